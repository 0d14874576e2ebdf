"""TFLite decoders of briefly trained models: size, batch-1 latency and PSNR of every variant, side by side.

For each config (32x32x1 cont 10 + disc [10], about 2.0 M multiply-adds per image; 64x64x1
cont 6 + disc [3], about 8.1 M), this trains a JointVAE for --train_steps on procedural
dSprites (64x64, average-pooled to 32x32 for the small config) so that quantisation meets
realistic weights, converts its decoder to every variant as the export does (a fixed
batch of 1; int8 calibrated on --calibration_samples latents: encoded dSprites images
plus prior samples) and, for comparison, float32 and int8 with a dynamic batch, measures
fidelity against the Keras float32 decoder on --fidelity_samples prior samples, and times
--invokes batch-1 invokes per variant with --threads interpreter threads, repeated
--rounds times with the variants interleaved. Each round's figure is the median of its
invokes; the reported latency is the best round's, since other processes only ever add
time (on a busy 2-core machine, whole rounds of the dynamic-batch int8 decoders, whose
transposed convolutions run on TFLite's own kernels rather than XNNPACK, took ~12 ms per
invoke). Every round is listed. Checks the targets:
full-int8 file <= 30% of float32, PSNR >= 30 dB, int8 batch-1 latency <= float32's.

Prints one JSON object.

    python bench/tflite_decoder.py [--train_steps 300] [--invokes 200] [--rounds 5] [--configs 32,64]

With --trained NAME=PATH,... it measures trained models instead (a model_dir or .keras file,
or a folder holding a reference PyTorch model.pt + specs.json, imported by jointvae_tf.compat):
the int8 decoder with each choice of activation ranges (int8_minmax: the converter's;
int8_fitted: fitted per tensor; int8_tuned: then tuned on the whole decoder's images, the
export's default; see export/tflite.py), side by side with float32, on the posterior modes
of REAL test images: the 320 official dSprites frames (../shared/data/dsprites) or MNIST
test digits (../shared/data/mnist); calibration encodes training images (procedural dSprites,
MNIST train) plus prior samples, as the export does. Targets there: int8 PSNR >= 40 dB mean
and >= 32 dB on the worst image, file <= 30% of float32, batch-1 latency <= 0.5x float32.

    python bench/tflite_decoder.py --trained qs=../qs_dsprites_model,mnist=../shared/data/reference_models/mnist
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CONFIGS = {32: ((32, 32, 1), "cont=10,disc=10"), 64: ((64, 64, 1), "cont=6,disc=3")}
DYNAMIC_VARIANTS = ("float32", "int8")
TARGETS = {"int8_size_ratio_max": 0.30, "int8_psnr_db_min": 30.0, "int8_latency_vs_float32_max": 1.0}
TRAINED_TARGETS = {"int8_size_ratio_max": 0.30, "int8_psnr_db_min": 40.0, "int8_worst_image_psnr_db_min": 32.0,
                   "int8_latency_vs_float32_max": 0.5}
SHARED_DATA = os.environ.get("JOINTVAE_SHARED_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data")


def decoder_multiply_adds(model) -> int:
    """Multiply-adds of one image through model.decoder: Dense in*out, Conv2DTranspose H_in*W_in*C_in*C_out*k*k."""
    import keras

    total = 0
    for layer in model.decoder_logits.layers:
        if isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, height, width, _ = layer.input.shape
            k_h, k_w, c_out, c_in = layer.kernel.shape
            total += height * width * c_in * c_out * k_h * k_w
    return int(total)


def procedural_images(size: int, batch: int, seed: int):
    """dSprites batches [batch, size, size, 1] in [0, 1], average-pooled to `size`."""
    import tensorflow as tf

    from jointvae_tf import data

    dataset = data.load_dataset("dsprites", batch_size=batch, shuffle=True, seed=seed)
    if size != 64:
        dataset = dataset.map(lambda x: tf.nn.avg_pool2d(x, 64 // size, 64 // size, "VALID"))
    return dataset


def verify_and_time(models, latent, reference, args):
    """(report.verify_decoders' checks, {variant: [batch-1 latency ms per round]}) of the .tflite `models`.

    Round 1 is the verification's pass over the variants; later rounds interleave them again.
    """
    from export import decode_tflite, report

    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for variant, content in models.items():
            paths[variant] = os.path.join(folder, f"decoder_{variant}.tflite")
            decode_tflite.atomic_write(paths[variant], content)
        checks = report.verify_decoders(paths, latent, reference, invokes=args.invokes, num_threads=args.threads)
        rounds = {v: [c["latency_ms"]] for v, c in checks["variants"].items()}
        decoders = {v: decode_tflite.TFLiteDecoder(p, num_threads=args.threads) for v, p in paths.items()}
        for _ in range(args.rounds - 1):
            for variant, decoder in decoders.items():
                rounds[variant].append(report.median_latency_ms(decoder, latent[:1], args.invokes))
    return checks, rounds


def bench_config(size: int, args) -> dict:
    import keras
    import numpy as np

    import jointvae_tf as jv
    from export import tflite

    image_shape, spec = CONFIGS[size]
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(image_shape=image_shape, latent_spec=spec, seed=0)
    model.compile()
    start = time.perf_counter()
    history = model.fit(procedural_images(size, 64, seed=0).repeat(), steps_per_epoch=args.train_steps, epochs=1,
                        verbose=0)
    training = {"data": f"procedural dSprites{'' if size == 64 else f', average-pooled to {size}x{size}'}",
                "steps": args.train_steps, "batch": 64, "seconds": round(time.perf_counter() - start, 1),
                "final_reconstruction_loss": round(float(history.history["reconstruction_loss"][-1]), 2)}

    calibration_images = next(iter(procedural_images(size, args.calibration_samples // 2, seed=1))).numpy()
    latents, calibration = tflite.calibration_latents(model, calibration_images, args.calibration_samples, seed=0)
    models = tflite.convert_decoders(model, list(tflite.VARIANTS), latents)
    # The export's default is a fixed batch of 1; any-batch decoders, for comparison:
    for variant, content in tflite.convert_decoders(model, DYNAMIC_VARIANTS, latents, batch_size=None).items():
        models[f"{variant}_dynamic_batch"] = content

    latent = model.sample_prior(args.fidelity_samples, seed=1).numpy()
    reference = np.concatenate([model.decode(latent[i:i + 100]).numpy() for i in range(0, len(latent), 100)])
    checks, rounds = verify_and_time(models, latent, reference, args)

    variants = {}
    for variant, c in checks["variants"].items():
        variants[variant] = {
            "bytes": c["bytes"],
            "size_vs_float32": round(c["size_vs_float32"], 4),
            "latency_ms": round(min(rounds[variant]), 4),
            "latency_ms_rounds": [round(v, 4) for v in rounds[variant]],
            "psnr_db": round(c["psnr_db"], 2),
            "worst_image_psnr_db": round(c["worst_image_psnr_db"], 2),
            "max_abs_error": float(f"{c['max_abs_error']:.3g}"),
            "mean_abs_error": float(f"{c['mean_abs_error']:.3g}"),
        }
    int8, float32 = variants["int8"], variants["float32"]
    return {
        "image_shape": list(image_shape),
        "latent_spec": spec,
        "decoder_multiply_adds": decoder_multiply_adds(model),
        "training": training,
        "calibration": calibration,
        "variants": variants,
        "targets": {
            "int8_size_ratio": int8["size_vs_float32"],
            "int8_size_ratio_ok": int8["size_vs_float32"] <= TARGETS["int8_size_ratio_max"],
            "int8_psnr_db": int8["psnr_db"],
            "int8_psnr_ok": int8["psnr_db"] >= TARGETS["int8_psnr_db_min"],
            "int8_latency_vs_float32": round(int8["latency_ms"] / float32["latency_ms"], 3),
            "int8_latency_ok": int8["latency_ms"] <= float32["latency_ms"] * TARGETS["int8_latency_vs_float32_max"],
        },
    }


# --------------------------------------------------------------------------- trained models
def load_trained(path: str):
    """A trained JointVAE from a model_dir, a .keras file, or a folder with a reference model.pt + specs.json."""
    import jointvae_tf as jv
    from jointvae_tf.training import checkpoints

    if os.path.isfile(os.path.join(path, "model.pt")):
        return jv.compat.load_torch_checkpoint(os.path.join(path, "model.pt"), os.path.join(path, "specs.json"))
    if os.path.isfile(os.path.join(path, "model.keras")) and not os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "model.keras")
    return checkpoints.restore_model(path)


def real_images(image_shape, split: str, count: int, seed: int):
    """Real images for a model's shape: (images [N, H, W, C], description).

    64x64x1: "test" is the 320 official dSprites frames, "train" procedural dSprites; 32x32x1:
    MNIST t10k / train digits (shuffled with seed).
    """
    import numpy as np

    from jointvae_tf import data

    if tuple(image_shape) == (64, 64, 1):
        if split == "test":
            from PIL import Image

            with Image.open(os.path.join(SHARED_DATA, "dsprites", "dsprites.gif")) as gif:
                frames = []
                for index in range(gif.n_frames):
                    gif.seek(index)
                    frames.append(np.asarray(gif.convert("L")) > 127)
            return np.stack(frames)[..., None].astype("float32")[:count], "official dSprites frames (dsprites.gif)"
        dataset = data.load_dataset("dsprites", batch_size=count, shuffle=True, seed=seed)
        return next(iter(dataset)).numpy(), "procedural dSprites"
    if tuple(image_shape) == (32, 32, 1):
        prefix = "t10k" if split == "test" else "train"
        path = os.path.join(SHARED_DATA, "mnist", f"{prefix}-images-idx3-ubyte.gz")
        dataset = data.load_dataset(f"idx:{path}", batch_size=count, shuffle=True, seed=seed)
        return next(iter(dataset)).numpy(), f"MNIST {prefix}"
    raise ValueError(f"no real images for image shape {list(image_shape)} (64x64x1 dSprites or 32x32x1 MNIST)")


def bench_trained(name: str, path: str, args) -> dict:
    import numpy as np

    from export import tflite

    model = load_trained(path)
    test, test_source = real_images(model.image_shape, "test", args.test_images, seed=5)
    train, train_source = real_images(model.image_shape, "train", args.calibration_samples // 2, seed=0)
    latent = np.concatenate([model.latent(test[i:i + 100]).numpy() for i in range(0, len(test), 100)])
    reference = np.concatenate([model.decode(latent[i:i + 100]).numpy() for i in range(0, len(latent), 100)])
    calibration, calibration_info = tflite.calibration_latents(model, train, args.calibration_samples, seed=0)
    models = tflite.convert_decoders(model, ["float32"], None)
    for ranges in tflite.RANGES:
        models[f"int8_{ranges}"] = tflite.convert_decoders(model, ["int8"], calibration, ranges=ranges)["int8"]
    checks, rounds = verify_and_time(models, latent, reference, args)
    variants = {}
    for variant, c in checks["variants"].items():
        variants[variant] = {
            "bytes": c["bytes"], "size_vs_float32": round(c["size_vs_float32"], 4),
            "latency_ms": round(min(rounds[variant]), 4), "latency_ms_rounds": [round(v, 4) for v in rounds[variant]],
            "psnr_db": round(c["psnr_db"], 2), "worst_image_psnr_db": round(c["worst_image_psnr_db"], 2),
            "max_abs_error": float(f"{c['max_abs_error']:.3g}"),
        }
    float32 = variants["float32"]
    targets = {}
    for label in (f"int8_{ranges}" for ranges in tflite.RANGES):
        v = variants[label]
        ratio = v["latency_ms"] / float32["latency_ms"]
        targets[label] = {
            "psnr_ok": v["psnr_db"] >= TRAINED_TARGETS["int8_psnr_db_min"],
            "worst_image_psnr_ok": v["worst_image_psnr_db"] >= TRAINED_TARGETS["int8_worst_image_psnr_db_min"],
            "size_ok": v["size_vs_float32"] <= TRAINED_TARGETS["int8_size_ratio_max"],
            "latency_vs_float32": round(ratio, 3),
            "latency_ok": ratio <= TRAINED_TARGETS["int8_latency_vs_float32_max"],
        }
    return {
        "source": os.path.abspath(path), "image_shape": list(model.image_shape),
        "latent_spec": model.latent_spec.to_dict(),
        "fidelity_latents": f"posterior modes of {len(test)} {test_source} test images",
        "calibration": {**calibration_info, "images_from": train_source},
        "variants": variants, "targets": targets,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="32,64")
    parser.add_argument("--train_steps", type=int, default=300)
    parser.add_argument("--calibration_samples", type=int, default=400)
    parser.add_argument("--fidelity_samples", type=int, default=1000)
    parser.add_argument("--invokes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trained", default="",
                        help="NAME=PATH,...: measure these trained models (int8 with each choice of ranges) "
                             "instead of --configs")
    parser.add_argument("--test_images", type=int, default=500, help="Real test images per trained model.")
    args = parser.parse_args()
    trained = {}
    for item in filter(None, (text.strip() for text in args.trained.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not os.path.exists(path):
            sys.exit(f"--trained: {item!r} must be NAME=PATH with an existing model_dir, .keras file or "
                     "reference model folder")
        trained[name] = path
    sizes = []
    for text in args.configs.split(","):
        if not text.strip().isdigit() or int(text) not in CONFIGS:
            sys.exit(f"--configs: unknown size {text!r}; allowed: {sorted(CONFIGS)}")
        sizes.append(int(text))
    for name in ("train_steps", "calibration_samples", "fidelity_samples", "invokes", "rounds", "threads",
                 "test_images"):
        if getattr(args, name) < 1:
            sys.exit(f"--{name} must be >= 1, got {getattr(args, name)}")

    import tensorflow as tf

    if trained:
        print(json.dumps({
            "threads": args.threads, "invokes": args.invokes, "rounds": args.rounds, "cpu_count": os.cpu_count(),
            "targets": TRAINED_TARGETS,
            "versions": {"tensorflow": tf.__version__,
                         "ai_edge_litert": importlib.metadata.version("ai-edge-litert")},
            "models": {name: bench_trained(name, path, args) for name, path in trained.items()},
        }))
        return
    result = {
        "threads": args.threads, "invokes": args.invokes, "rounds": args.rounds,
        "fidelity_samples": args.fidelity_samples, "cpu_count": os.cpu_count(), "targets": TARGETS,
        "versions": {"tensorflow": tf.__version__, "ai_edge_litert": importlib.metadata.version("ai-edge-litert")},
        "configs": {str(size): bench_config(size, args) for size in sizes},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
