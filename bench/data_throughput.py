"""Input pipeline throughput on this machine, in images per second. Prints one JSON object.

Pipelines timed (batch 64, shuffled, as training reads them):
  dsprites_renderer      `DSprites.render` alone, on uniformly random factor combinations
  dsprites_pipeline      `load_dataset("dsprites")`: shuffled indices -> rendered float batches
  mnist_tfds_pipeline    `load_dataset("mnist")` from TFDS (decoded into memory when loaded:
                         `mnist_tfds_load_s` is that time, `mnist_tfds_build_s` the offline build's)
  mnist_idx_pipeline     `load_dataset("idx:../shared/data/mnist")`

MNIST is built offline from ../shared/data/mnist into a temporary data_dir unless
--data_dir points at one where it is already prepared. Each figure is the median
of --rounds timings. Wall-clock figures suffer when other processes share the
CPU, so the JSON also gives the 1-minute load average at the start and, per
pipeline, images per second of this process's CPU time (`*_per_cpu_s`), which a
busy machine barely changes.

    python bench/data_throughput.py [--batches 400] [--rounds 3] [--data_dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MNIST_DIR = os.path.join(ROOT, "..", "shared", "data", "mnist")
TARGETS = {"dsprites_renderer": 20000, "mnist_tfds_pipeline": 50000}


class Clock:
    """Wall-clock and process CPU time of a block: `images / clock.wall`, `images / clock.cpu`."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def time_dataset(dataset, batches: int, batch_size: int) -> tuple[float, float]:
    """(images per second, images per CPU second) over `batches` batches of a warm iterator."""
    iterator = iter(dataset.repeat())
    for _ in range(20):  # warm-up: tracing, thread pools, prefetch
        next(iterator)
    with Clock() as clock:
        for _ in range(batches):
            next(iterator)
    return batches * batch_size / clock.wall, batches * batch_size / clock.cpu


def time_renderer(batches: int, batch_size: int) -> tuple[float, float]:
    import numpy as np

    import jointvae_tf.data as jd

    data = jd.DSprites()
    factors = data.sample_factors(batches * batch_size, np.random.RandomState(0))
    data.render(factors[:batch_size])
    with Clock() as clock:
        for i in range(batches):
            data.render(factors[i * batch_size:(i + 1) * batch_size])
    return batches * batch_size / clock.wall, batches * batch_size / clock.cpu


def time_epoch(dataset, batch_size: int) -> tuple[float, float]:
    """(images per second, images per CPU second) over one epoch."""
    with Clock() as clock:
        count = sum(1 for _ in dataset)
    return count * batch_size / clock.wall, count * batch_size / clock.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400, help="batches timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="timings per figure (the median is reported)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir with mnist prepared (else built in a temp dir)")
    args = parser.parse_args()

    import jointvae_tf.data as jd

    batch, batches, rounds = args.batch_size, args.batches, args.rounds
    results = {"load_average_1min": round(os.getloadavg()[0], 2)}

    def record(name, fn, repeat=rounds):
        timings = [fn() for _ in range(repeat)]
        results[name] = round(statistics.median(wall for wall, _ in timings))
        results[f"{name}_per_cpu_s"] = round(statistics.median(cpu for _, cpu in timings))

    record("dsprites_renderer", lambda: time_renderer(batches, batch))
    dsprites = jd.load_dataset("dsprites", batch_size=batch)
    record("dsprites_pipeline", lambda: time_dataset(dsprites, batches, batch))

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or scratch
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # TFDS reports progress on stdout; keep it JSON only
            jd.prepare_tfds("mnist", data_dir=data_dir, manual_dir=MNIST_DIR)
        results["mnist_tfds_build_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        mnist = jd.load_dataset("mnist", data_dir=data_dir, batch_size=batch)
        results["mnist_tfds_load_s"] = round(time.perf_counter() - start, 1)
        record("mnist_tfds_pipeline", lambda: time_epoch(mnist, batch))
    idx = jd.load_dataset(f"idx:{MNIST_DIR}", batch_size=batch)
    record("mnist_idx_pipeline", lambda: time_dataset(idx, batches, batch))

    print(json.dumps({
        "unit": "images_per_s",
        "batch_size": batch,
        "cpus": os.cpu_count(),
        **results,
        "targets": TARGETS,
        "meets_targets": {name: results[name] >= target for name, target in TARGETS.items()},
    }))


if __name__ == "__main__":
    main()
