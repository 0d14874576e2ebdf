"""Where a JointVAE training step spends its time, stage by stage, and the same for the PyTorch reference.

Each stage is a compiled function run on one fixed batch, timed over `--steps` calls after
`--warmup`; every stage contains the one before it, so the differences are the stage's own cost:

  encode        encoder forward pass (training=True)
  forward       + samplers, decoder, the loss terms (`JointVAE._loss_terms`)
  gradients     + the backward pass (`tf.GradientTape.gradient`)
  train_step    + Adam's update, the metric trackers, the pixel range check (`JointVAE.train_step`)
  fit           `model.fit` on a cached dataset, timed as bench/train_throughput.py does:
                + Keras' loop (`steps_per_execution`), the iterator, callbacks

With `--ops` the `fit` stage also runs under the TensorFlow profiler and the JSON lists the kernels
that took the most time (summed over TensorFlow's compute threads, per step), read from the trace's
XSpace protobuf. With `--torch` the reference (../shared/bench/torch_reference.py, imported, never copied) is timed
the same way: forward + loss, + backward, + Adam step. Run it on a quiet machine: other work on the
same cores inflates PyTorch's OpenMP barriers far more than TensorFlow's thread pool.

Prints one JSON object with milliseconds per step for each stage and each stage's own share.

    python bench/profile_step.py --size 64 [--steps 200] [--warmup 30] [--torch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TORCH_REFERENCE = os.path.join(ROOT, "..", "shared", "bench", "torch_reference.py")
from bench import train_throughput  # noqa: E402

CONFIGS = train_throughput.CONFIGS
STAGES = ("encode", "forward", "gradients", "train_step", "fit")


def _per_step_ms(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return 1000.0 * (time.perf_counter() - start) / steps


def _model_and_images(size: int, batch: int):
    """A compiled reference-size JointVAE (seed 0) and 8 batches of binary images [8 * batch, H, W, C]."""
    import jointvae_tf as jv  # first: it asks TensorFlow for oneDNN kernels
    import keras
    import numpy as np

    image_shape, spec = CONFIGS[size]
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(image_shape=image_shape, latent_spec=spec, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    images = (np.random.RandomState(0).rand(8 * batch, *image_shape) > 0.5).astype("float32")
    return model, images


def profile_jointvae(size: int, batch: int, steps: int, warmup: int) -> dict:
    import tensorflow as tf

    model, images_np = _model_and_images(size, batch)
    images = tf.constant(images_np[:batch])
    model.fit(images_np, batch_size=batch, epochs=1, verbose=0, steps_per_epoch=2)  # builds the optimizer
    step = tf.constant(1000, tf.int64)

    @tf.function
    def encode():
        return model.encoder(images, training=True)

    @tf.function
    def forward():
        return model._loss_terms(images, training=True, seed=model._step_seed(step), step=step)["loss"]

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = model._loss_terms(images, training=True, seed=model._step_seed(step), step=step)["loss"]
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def train_step():
        return model.train_step(images)

    def run(fn):
        return lambda: tf.nest.map_structure(lambda t: t.numpy(), fn())

    ms = {name: _per_step_ms(run(fn), steps, warmup)
          for name, fn in (("encode", encode), ("forward", forward), ("gradients", gradients),
                           ("train_step", train_step))}
    # `fit` as bench/train_throughput.py times it (Keras' on_train_begin to on_train_end, a fresh model).
    fit = train_throughput.jointvae_images_per_s(size, steps, batch, warmup, compile_kwargs={})
    ms["fit"] = 1000.0 * batch / fit["images_per_s"]
    return ms


def top_kernels(size: int, batch: int, steps: int, warmup: int, top: int = 20) -> dict:
    """Thread time of `fit` steps by kernel type, and the `top` nodes that took the most.

    Returns {"thread_ms_per_step": total, "by_kernel": {kernel: ms}, "top_nodes": [{"node", "kernel", "ms"}]}
    (milliseconds per step, summed over TensorFlow's compute threads).
    """
    import collections
    import glob
    import re
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    model, images = _model_and_images(size, batch)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True).cache().repeat()
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    host = next(plane for plane in space.planes if plane.name == "/host:CPU")
    picoseconds = collections.Counter()
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name  # "scope/node:KernelType"
            if not name.startswith("ExecutorState"):
                picoseconds[re.sub(r"^.*StatefulPartitionedCall/", "", name)] += event.duration_ps
    def ms(ps):
        return round(ps / 1e9 / steps, 3)

    by_kernel = collections.Counter()
    for name, ps in picoseconds.items():
        by_kernel[name.rpartition(":")[2]] += ps
    top_nodes = [{"node": name.rpartition(":")[0], "kernel": name.rpartition(":")[2], "ms": ms(ps)}
                 for name, ps in picoseconds.most_common(top)]
    return {"thread_ms_per_step": ms(sum(picoseconds.values())),
            "by_kernel": {kernel: ms(ps) for kernel, ps in by_kernel.most_common()},
            "top_nodes": top_nodes}


def profile_torch(size: int, batch: int, steps: int, warmup: int, threads: int) -> dict | None:
    if importlib.util.find_spec("torch") is None or not os.path.exists(TORCH_REFERENCE):
        return None
    import torch

    spec = importlib.util.spec_from_file_location("torch_reference", TORCH_REFERENCE)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    import jointvae_tf as jv

    latent_spec = jv.LatentSpec.parse(CONFIGS[size][1])  # the same latent space as ours
    model = ref.JointVAE(size, 1, latent_spec.continuous, list(latent_spec.discrete))
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = (torch.rand(batch, 1, size, size) > 0.5).float()

    def encode():
        with torch.enable_grad():
            return model.hidden(model.enc(x).flatten(1))

    def forward():
        return ref.loss_fn(x, *model(x), 1000)

    def gradients():
        opt.zero_grad()
        forward().backward()

    def train_step():
        gradients()
        opt.step()

    return {name: _per_step_ms(fn, steps, warmup) for name, fn in
            (("encode", encode), ("forward", forward), ("gradients", gradients), ("train_step", train_step))}


def own_costs(ms: dict) -> dict:
    names = [n for n in STAGES if n in ms]
    own = {names[0]: ms[names[0]]}
    for before, name in zip(names, names[1:]):
        own[name] = ms[name] - ms[before]
    return {name: round(value, 3) for name, value in own.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, choices=sorted(CONFIGS), default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (TensorFlow uses its defaults).")
    parser.add_argument("--torch", action="store_true", help="Also profile the PyTorch reference.")
    parser.add_argument("--ops", action="store_true", help="Also list the kernels that took the most time.")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "warmup", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    result = {"size": args.size, "batch": args.batch, "steps": args.steps, "cpu_count": os.cpu_count(),
              "load_average_1min": round(os.getloadavg()[0], 2)}
    ours = profile_jointvae(args.size, args.batch, args.steps, args.warmup)
    result["jointvae_ms"] = {k: round(v, 3) for k, v in ours.items()}
    result["jointvae_own_ms"] = own_costs(ours)
    if args.ops:
        result["jointvae_kernels"] = top_kernels(args.size, args.batch, args.steps, args.warmup)
    if args.torch:
        ref = profile_torch(args.size, args.batch, args.steps, args.warmup, args.threads)
        if ref is not None:
            result["torch_ms"] = {k: round(v, 3) for k, v in ref.items()}
            result["torch_own_ms"] = own_costs(ref)
            result["train_step_ratio"] = round(ref["train_step"] / ours["train_step"], 3)
            result["fit_vs_torch_step_ratio"] = round(ref["train_step"] / ours["fit"], 3)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
