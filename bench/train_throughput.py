"""Training throughput of jointvae-tf against the original PyTorch architecture, side by side.

For each config (32x32x1 cont 10 + disc [10]; 64x64x1 cont 6 + disc [3]), batch 64, this
times full training steps through `model.fit` with the defaults a user gets from a plain
`model.compile(optimizer=...)`, and in the same invocation runs
`../shared/bench/torch_reference.py` (skipped when torch is not installed). The two are
alternated `--rounds` times and the median of each is reported, to blunt a noisy machine.

The clock runs from Keras' `on_train_begin` to `on_train_end` (every step, the iterator's
creation and all callbacks), as the reference times its loop. What `fit` spends after
`on_train_end` is reported apart as `fit_return_delay_s`: in TF 2.21 destroying a
`tf.data` iterator that a `tf.function` consumed can block until the autotuner's next
wake-up (its sleep doubles up to seconds), a fixed cost per `fit` call, not per step,
that measured 0 to 5.1 s here and made short timings jump between two values.

`--precision` builds our model under a Keras dtype policy (float32, mixed_bfloat16 or
mixed_float16, see `jointvae_tf.precision_policy`); the reference always runs float32.
bfloat16 pays off only on hardware with bfloat16 arithmetic (CPUs with AVX-512 BF16 or
AMX, TPUs), float16 on GPUs.

Prints one JSON object.

    python bench/train_throughput.py [--steps 200] [--rounds 3] [--configs 32,64] [--precision float32]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TORCH_REFERENCE = os.path.join(ROOT, "..", "shared", "bench", "torch_reference.py")
CONFIGS = {32: ((32, 32, 1), "cont=10,disc=10"), 64: ((64, 64, 1), "cont=6,disc=3")}


def jointvae_images_per_s(size: int, steps: int, batch: int, warmup: int, compile_kwargs: dict,
                          precision: str = "float32") -> dict:
    import jointvae_tf as jv  # first, as the README imports it: it asks TensorFlow for oneDNN kernels
    import keras
    import numpy as np
    import tensorflow as tf

    image_shape, spec = CONFIGS[size]
    keras.utils.set_random_seed(0)
    with jv.precision_policy(precision):
        model = jv.JointVAE(image_shape=image_shape, latent_spec=spec, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(5e-4), **compile_kwargs)
    images = (np.random.RandomState(0).rand(8 * batch, *image_shape) > 0.5).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True).cache().repeat()
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    clock = _train_clock()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    returned = time.perf_counter()
    return {"images_per_s": steps * batch / (clock.end - clock.begin), "fit_return_delay_s": returned - clock.end,
            "onednn": jv.runtime.onednn_enabled()}


def _train_clock():
    import keras

    class TrainClock(keras.callbacks.Callback):
        """Times the training loop of one `fit` call."""

        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_end(self, logs=None):
            self.end = time.perf_counter()

    return TrainClock()


def torch_images_per_s(size: int, steps: int, batch: int) -> float | None:
    if importlib.util.find_spec("torch") is None or not os.path.exists(TORCH_REFERENCE):
        return None
    out = subprocess.run(
        [sys.executable, TORCH_REFERENCE, "--image_size", str(size), "--steps", str(steps), "--batch", str(batch)],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["images_per_s"])


def _ours_in_subprocess(size, steps, batch, warmup, compile_kwargs, precision) -> dict:
    """One measurement in a fresh process, as the torch reference runs, so neither inherits the other's state."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", str(size), "--steps", str(steps),
         "--batch", str(batch), "--warmup", str(warmup), "--compile", json.dumps(compile_kwargs),
         "--precision", precision],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="32,64")
    parser.add_argument(
        "--compile", default="{}",
        help='JSON of extra compile() arguments to compare against the defaults, e.g. \'{"jit_compile": true}\'',
    )
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policy of our model: float32, mixed_bfloat16 or mixed_float16")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_kwargs = json.loads(args.compile)
    if args.worker is not None:
        print(json.dumps(jointvae_images_per_s(args.worker, args.steps, args.batch, args.warmup, compile_kwargs,
                                               args.precision)))
        return
    from jointvae_tf.model.jointvae import check_precision  # loads TensorFlow here too; each measurement runs apart

    try:
        check_precision(args.precision)
    except ValueError as error:
        sys.exit(f"--precision: {error}")
    result = {"batch": args.batch, "steps": args.steps, "rounds": args.rounds, "compile": compile_kwargs,
              "precision": args.precision, "cpu_count": os.cpu_count(), "configs": {}}
    for size in (int(s) for s in args.configs.split(",")):
        if size not in CONFIGS:
            sys.exit(f"--configs: unknown size {size}; allowed: {sorted(CONFIGS)}")
        ours, theirs, delays, onednn = [], [], [], set()
        for _ in range(args.rounds):
            run = _ours_in_subprocess(size, args.steps, args.batch, args.warmup, compile_kwargs, args.precision)
            ours.append(run["images_per_s"])
            delays.append(run["fit_return_delay_s"])
            onednn.add(run["onednn"])
            reference = torch_images_per_s(size, args.steps, args.batch)
            if reference is not None:
                theirs.append(reference)
        entry = {"image_shape": list(CONFIGS[size][0]), "latent_spec": CONFIGS[size][1],
                 "jointvae_tf_images_per_s": round(statistics.median(ours), 1),
                 "jointvae_tf_runs": [round(v, 1) for v in ours],
                 "fit_return_delay_s": [round(v, 2) for v in delays], "onednn": sorted(onednn)}
        if theirs:
            entry["torch_reference_images_per_s"] = round(statistics.median(theirs), 1)
            entry["torch_reference_runs"] = [round(v, 1) for v in theirs]
            entry["ratio"] = round(statistics.median(ours) / statistics.median(theirs), 3)
        else:
            entry["torch_reference"] = "skipped: torch is not installed"
        result["configs"][str(size)] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
