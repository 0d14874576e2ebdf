"""Keras callbacks of the training loop: checkpoints, NaN guard, step budget, per-latent KL and pictures.

All act on the optimizer's iteration count (the global step), which survives a restore.
With `steps_per_execution > 1` Keras calls batch hooks once per execution, so "every N
steps" means at the first hook at or after each multiple of N.

Summaries are written under `tf.summary.record_if(True)`: Keras' TensorBoard callback
leaves a global `record_if` keyed to its own hook counter in place during `fit`, which
would otherwise drop them.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading

import keras
import numpy as np
import tensorflow as tf

from jointvae_tf.model import losses
from jointvae_tf.training import checkpoints


def _step(model) -> int:
    return checkpoints.optimizer_step(model.optimizer)


class StepCheckpoint(keras.callbacks.Callback):
    """Saves a `checkpoints.Checkpointer` every `every` steps and at the end of training."""

    def __init__(self, checkpointer, every: int):
        super().__init__()
        self.checkpointer, self.every = checkpointer, int(every)
        self.last_saved = None

    def on_train_begin(self, logs=None):
        self.last_saved = _step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step - self.last_saved >= self.every:
            self.checkpointer.save(step)
            self.last_saved = step

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if step != self.last_saved:
            self.checkpointer.save(step)
            self.last_saved = step


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, before any later callback can checkpoint it.

    Put it first in the callback list. It raises `FloatingPointError` naming the step and the
    last good checkpoint, so the binary exits non-zero and the checkpoints stay intact.
    """

    def __init__(self, checkpointer=None):
        super().__init__()
        self.checkpointer = checkpointer

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            last = self.checkpointer.latest if self.checkpointer is not None else None
            raise FloatingPointError(
                f"training stopped: loss became {float(loss)} by step {_step(self.model)}; "
                f"last good checkpoint: {last or 'none'}"
            )


class StopAtStep(keras.callbacks.Callback):
    """Ends `fit` once the global step reaches `total_steps` (so a resumed run stops where planned)."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = int(total_steps)

    def _check(self):
        if _step(self.model) >= self.total_steps:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_begin(self, epoch, logs=None):
        self._check()


class StopOnSignal(keras.callbacks.Callback):
    """Ends training at the next step when SIGTERM (a scheduler's preemption) or SIGINT (Ctrl-C) arrives.

    Used as a context manager around the run, it installs the handlers (main thread only) and
    puts the previous ones back on exit; as a callback it stops `fit` after the step in flight,
    so later callbacks (`StepCheckpoint.on_train_end`) save the current step. A second signal
    while stopping raises `KeyboardInterrupt` at once. `received` holds the first signal's name.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        super().__init__()
        self.received: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name} while stopping")
        self.received = signal.Signals(signum).name
        logging.getLogger("jointvae_tf").warning(
            "received %s: stopping after the current step and saving a checkpoint", self.received)
        if self.model is not None:
            self.model.stop_training = True

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _check(self):
        if self.received:
            self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self._check()

    def on_epoch_begin(self, epoch, logs=None):
        self._check()

    def on_train_batch_end(self, batch, logs=None):
        self._check()


class _EveryNSteps(keras.callbacks.Callback):
    """Calls `run(step, logs)` at the first batch hook at or after each multiple of `every` global steps."""

    def __init__(self, every: int):
        super().__init__()
        self.every = int(every)
        self.last = None

    def on_train_begin(self, logs=None):
        self.last = _step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step // self.every > self.last // self.every:
            self.last = step
            self.run(step, logs or {})

    def run(self, step: int, logs: dict) -> None:
        raise NotImplementedError


class StepScalars(_EveryNSteps):
    """TensorBoard scalars against the global step: every metric in `logs` (loss terms and
    capacities, running means over the epoch as Keras reports them) and the KL of every
    continuous dimension and discrete latent on a fixed batch `images` [batch, H, W, C].
    """

    def __init__(self, images: np.ndarray, log_dir: str, every: int):
        super().__init__(every)
        self.images = images
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))

    def run(self, step, logs):
        encoded = self.model.encode(self.images)
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            for name, value in logs.items():
                tf.summary.scalar(name, float(value))
            if self.model.latent_spec.continuous:
                for i, kl in enumerate(losses.kl_normal(encoded["mean"], encoded["log_var"]).numpy()):
                    tf.summary.scalar(f"kl_continuous/z{i}", kl)
            if encoded["logits"]:
                for i, kl in enumerate(losses.kl_categorical_uniform(encoded["logits"]).numpy()):
                    tf.summary.scalar(f"kl_discrete/c{i}", kl)
        self.writer.flush()


class Pictures(_EveryNSteps):
    """Writes latent traversals, samples and reconstructions as PNGs (and to TensorBoard) every `every` steps."""

    def __init__(self, images: np.ndarray, image_dir: str, log_dir: str | None, every: int):
        super().__init__(every)
        self.images, self.image_dir = images, image_dir
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "images")) if log_dir else None

    def write(self) -> dict[str, str]:
        """Writes every picture of `viz.pictures` to image_dir/{name}.png (and TensorBoard); returns the paths."""
        from jointvae_tf import viz

        step = _step(self.model)
        grids = viz.pictures(self.model, images=self.images)
        paths = {name: viz.write_png(os.path.join(self.image_dir, f"{name}.png"), grid) for name, grid in grids.items()}
        if self.writer is not None:
            with self.writer.as_default(step=step), tf.summary.record_if(True):
                for name, grid in grids.items():
                    tf.summary.image(name, viz.to_tensorboard_images(grid))
            self.writer.flush()
        self.last = step
        return paths

    def run(self, step, logs):
        self.write()

    def on_train_end(self, logs=None):
        if self.last != _step(self.model):
            self.write()
