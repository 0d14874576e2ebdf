"""Wall time of `jointvae-evaluate`'s full metric set on a dSprites model, per metric.

    python bench/evaluate_speed.py                                   # a freshly initialised dSprites model
    python bench/evaluate_speed.py --model=/path/to/model.keras      # a trained one (model_dir, .keras, reference)
    python bench/evaluate_speed.py --output=before.json

Runs `evaluation.evaluate` on dsprites with the sizes `jointvae-evaluate` uses by default
(`evaluation.MetricSizes()`, or each divided by `--sizes_divisor`: FactorVAE 10,000 variance points / 10,000 train / 5,000 eval
votes, MIG 10,000 points, BetaVAE 10,000 / 5,000 points, 10,000 sampled images for the shape
accuracy and the reconstruction) and every metric, and prints one JSON object:

  "seconds"        wall seconds of each part as `evaluate` reports them ("images" is the
                   reconstruction + discrete accuracy pass), "total" the whole `evaluate` call;
  "cpu_seconds"    the process's CPU time over the call (all threads), less sensitive than
                   wall time to other jobs on the machine;
  "load_average"   `os.getloadavg()` before and after, to judge how loaded the machine was;
  "metrics"        the scores (compare two runs of the same model and seed: they must match);
  "floor"          with --floor: what the dSprites code cache alone costs at best, from rendering
                   and encoding `--floor_images` combinations apart (1,024 a call, as the cache
                   does) scaled to the combinations the run encoded ("settings":
                   "encoded_combinations"): "render_seconds" + "encode_seconds" is that part
                   done one after the other, "encode_seconds" the floor with rendering hidden.

The default model (`--model` unset) is a `JointVAE` of the dSprites preset's architecture
(64x64x1, 6 continuous + one 3-way discrete latent) initialised with `--init_seed`, so the bench
runs anywhere; its scores are near chance, its timings are those of a trained model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None,
                        help="A dSprites model_dir, .keras file or reference folder (default: a fresh model).")
    parser.add_argument("--init_seed", type=int, default=0, help="Seed of the fresh model's weights.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the metrics (as jointvae-evaluate --seed).")
    parser.add_argument("--metrics", default=None,
                        help="Comma-separated subset of the metrics (default: all, as jointvae-evaluate).")
    parser.add_argument("--sizes_divisor", type=int, default=1,
                        help="Divide every default sample size by this (batch size kept), for quick comparisons on "
                             "a loaded machine; 1 (default) is the full protocol jointvae-evaluate runs.")
    parser.add_argument("--floor", action="store_true",
                        help="Also time rendering and encoding apart and scale them to the encoded combinations.")
    parser.add_argument("--floor_images", type=int, default=16384, help="Combinations --floor times.")
    parser.add_argument("--output", default=None, help="Also write the JSON here (atomically).")
    return parser.parse_args(argv)


def build_model(source: str | None, init_seed: int):
    """(model, description): the model at `source`, or a fresh dSprites-preset JointVAE."""
    import jointvae_tf as jv  # first: it turns on oneDNN before TensorFlow loads
    from jointvae_tf import evaluation
    from jointvae_tf.training import presets

    if source:
        model, info = evaluation.load_model(source)
        if info["dataset"] not in (None, "dsprites"):
            raise evaluation.EvaluationError(f"{source} was trained on {info['dataset']}, not dsprites")
        return model, os.path.abspath(source)
    preset = presets.PRESETS["dsprites"]
    model = jv.JointVAE(preset.image_shape, preset.latent_spec, seed=init_seed)
    return model, f"fresh JointVAE {list(preset.image_shape)} {preset.latent_spec} seed {init_seed}"


def floor_seconds(model, num_images: int, num_combinations: int) -> dict:
    """Render and encode `num_images` dSprites combinations apart; both scaled to `num_combinations`."""
    import numpy as np

    from jointvae_tf import evaluation
    from jointvae_tf import metrics as jv_metrics
    from jointvae_tf.data import DSprites

    data, batch = DSprites(), evaluation.CACHE_ENCODE_BATCH_SIZE
    factors = data.sample_factors(num_images, np.random.RandomState(0))
    start = time.perf_counter()
    images = data.sample_observations_from_factors(factors, None)
    render = time.perf_counter() - start
    representation_fn = jv_metrics.make_representation_fn(evaluation.encode_fn(model), batch_size=batch)
    representation_fn(images[:batch])  # traces the encoder
    start = time.perf_counter()
    representation_fn(images)
    encode = time.perf_counter() - start
    scale = num_combinations / num_images
    return {"images_timed": num_images, "combinations": num_combinations,
            "render_seconds": round(render * scale, 2), "encode_seconds": round(encode * scale, 2),
            "encode_images_per_second": round(num_images / encode, 1)}


def scaled_sizes(divisor: int):
    """`evaluation.MetricSizes()` with every sample size divided by `divisor` (at least 2), batch size kept."""
    import dataclasses

    from jointvae_tf import evaluation

    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise evaluation.EvaluationError(f"--sizes_divisor must be an integer >= 1, got {divisor!r}")
    defaults = evaluation.MetricSizes()
    return defaults.scaled(**{field.name: max(2, getattr(defaults, field.name) // divisor)
                              for field in dataclasses.fields(defaults) if field.name != "batch_size"})


def main(argv=None) -> int:
    args = parse_args(argv)
    from jointvae_tf import evaluation
    from jointvae_tf.training import checkpoints

    metrics = args.metrics.split(",") if args.metrics else None
    try:
        sizes = scaled_sizes(args.sizes_divisor)
        if args.floor and args.floor_images < evaluation.CACHE_ENCODE_BATCH_SIZE:
            raise evaluation.EvaluationError(
                f"--floor_images must be >= {evaluation.CACHE_ENCODE_BATCH_SIZE}, got {args.floor_images}")
        model, description = build_model(args.model, args.init_seed)
        load_before = os.getloadavg()
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        results = evaluation.evaluate(model, "dsprites", seed=args.seed, sizes=sizes,
                                      metrics=metrics)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        floor = (floor_seconds(model, args.floor_images, results["settings"]["encoded_combinations"])
                 if args.floor else None)
    except (ValueError, FileNotFoundError) as error:
        print(f"evaluate_speed: error: {error}", file=sys.stderr)
        return 1
    value = {
        "model": description,
        "seed": args.seed,
        "sizes_divisor": args.sizes_divisor,
        "seconds": {**{name: round(s, 2) for name, s in results["seconds"].items()}, "total": round(wall, 2)},
        "cpu_seconds": round(cpu, 2),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "metrics": results["metrics"],
        "skipped": results["skipped"],
        "settings": results["settings"],
    }
    if floor:
        value["floor"] = floor
    if args.output:
        checkpoints.write_json_atomic(args.output, value)
    print(json.dumps(value, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
