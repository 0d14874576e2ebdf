"""The model_dir: a resolved configuration and TensorFlow checkpoints, written so no work is lost.

    model_dir/
      config.json          {"model": JointVAE.get_config(), ...training settings...}
      checkpoints/         tf.train.CheckpointManager files: ckpt-<step>.index/.data-*, checkpoint

The training binary, the PyTorch importer, the evaluate and export binaries all meet here.
Every file is written atomically: JSON through a temporary file and `os.replace`; TF writes
a checkpoint's data under a temporary name and the manager's index file atomically, so a
crash mid-write leaves the previous checkpoint usable.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import tempfile
import time
import zipfile
from typing import Any

import keras
import tensorflow as tf

from jointvae_tf import fileio
from jointvae_tf.model import JointVAE

CONFIG_FILE = "config.json"
CHECKPOINT_SUBDIR = "checkpoints"
# Fields of the model config that a checkpoint's variables depend on.
SHAPE_FIELDS = ("image_shape", "latent_spec")


def write_json_atomic(path: str, value: Any, allow_nan: bool = True) -> None:
    """Writes JSON to `path` atomically (temporary file in the same folder, then a rename)."""
    fileio.write_json(path, value, allow_nan=allow_nan)


def read_config(model_dir: str) -> dict[str, Any]:
    """The resolved configuration saved in model_dir (raises FileNotFoundError / ValueError)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: {model_dir!r} is not a model_dir written by jointvae-tf")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ValueError(f"{path} has no 'model' section")
    return config


def check_compatible(saved: dict[str, Any], requested: dict[str, Any], model_dir: str) -> None:
    """Refuses to resume a model_dir whose checkpoints were made for another model shape."""
    for field in SHAPE_FIELDS:
        old, new = saved["model"].get(field), requested["model"].get(field)
        if old != new:
            raise ValueError(
                f"{model_dir} holds a model with {field}={old}, but this run asks for {field}={new}: "
                "use another --model_dir, or the same settings to resume"
            )


def prepare_model_dir(model_dir: str) -> str:
    """Creates model_dir if needed and checks that it is a writable folder; returns its absolute path.

    Raises:
      ValueError: model_dir (or a parent) is a file, or the folder cannot be created or written.
    """
    path = os.path.abspath(model_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"model_dir {model_dir} is a file, not a folder: give a folder path")
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-")
        probe.close()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"model_dir {model_dir} cannot be written: {reason} ({error.filename or path})") from None
    return path


class ModelDirLock:
    """An exclusive lock on a model_dir for the length of a training run.

    `fcntl.flock` on model_dir/.lock: the kernel drops the lock when its holder exits, kill -9
    included, so a lock file left behind by a killed run is known stale and is taken over
    (with a warning naming the run that left it). The file records who holds the lock
    (pid, host, start time, command) for the error a second run gets.

        with ModelDirLock(model_dir):
            ...train...

    Raises (on entry):
      ValueError: another live process holds the lock (naming it), or the folder is unwritable.
    """

    FILE = ".lock"

    def __init__(self, model_dir: str, log=logging.getLogger("jointvae_tf")):
        self.model_dir, self.log = model_dir, log
        self.path = os.path.join(model_dir, self.FILE)
        self._fd = None

    def _open_and_lock(self) -> int:
        """Opens and flocks the lock file; retries when the file was replaced meanwhile."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._describe(os.read(fd, 4096))
                os.close(fd)
                raise ValueError(
                    f"model_dir {self.model_dir} is in use by another training run ({holder}): wait for it to "
                    "finish, stop it, or choose another --model_dir"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder we waited for may have removed the file: lock the file that is there now.
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    @staticmethod
    def _describe(raw: bytes) -> str:
        try:
            info = json.loads(raw.decode("utf-8"))
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return "holder unknown"

    def __enter__(self) -> "ModelDirLock":
        try:
            fd = self._open_and_lock()
        except OSError as error:
            raise ValueError(f"model_dir {self.model_dir} cannot be locked: {error.strerror or error}") from None
        previous = os.read(fd, 4096)
        if previous.strip():
            self.log.warning("model_dir %s: took over the lock left by a run that is no longer running (%s)",
                             self.model_dir, self._describe(previous))
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.remove(self.path)
        except OSError:
            pass
        finally:
            os.close(self._fd)  # releases the flock
            self._fd = None


# Settings a resumed run may change; each change is logged and recorded in config.json "history".
TRACKED_SETTINGS = ("dataset", "data_dir", "channels", "batch_size", "learning_rate", "seed", "strategy",
                    "precision")
TRACKED_MODEL_SETTINGS = ("temperature", "cont_capacity", "disc_capacity", "straight_through", "discrete_kl",
                          "likelihood", "category_balance", "latent_independence")


def record_changes(saved: dict[str, Any], resolved: dict[str, Any], step: int,
                   log=logging.getLogger("jointvae_tf")) -> list[dict[str, Any]]:
    """Carries config.json's "history" into `resolved` and appends what this resume changes.

    A run resumed with other settings (another dataset of the same image shape, another
    learning rate...) is allowed, but never silently: each changed setting is logged as a
    warning and recorded as {"step": step, "changed": {name: [old, new]}} in resolved["history"].
    Returns the history.
    """
    history = list(saved.get("history") or [])
    changed = {}
    for name in TRACKED_SETTINGS:
        if name in saved and saved.get(name) != resolved.get(name):
            changed[name] = [saved.get(name), resolved.get(name)]
    for name in TRACKED_MODEL_SETTINGS:
        old, new = saved["model"].get(name), resolved["model"].get(name)
        if old is not None and old != new:
            changed[f"model.{name}"] = [old, new]
    for name, (old, new) in changed.items():
        log.warning("resuming at step %d with %s=%s; this model_dir was trained with %s=%s so far "
                    "(recorded in config.json history)", step, name, new, name, old)
    if changed:
        history.append({"step": step, "changed": changed})
    resolved["history"] = history
    return history


def latest_checkpoint(model_dir: str) -> str | None:
    """The newest checkpoint the manager recorded in model_dir (unchecked; see `restorable_checkpoint`)."""
    return tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))


class CheckpointError(ValueError):
    """A model_dir whose checkpoints are all unreadable (truncated, bit-flipped or missing files)."""


def checkpoint_paths(model_dir: str) -> list[str]:
    """Every checkpoint (ckpt-<step>) in model_dir/checkpoints, newest first.

    Read from the files on disk, not only the manager's `checkpoint` state file: a crash
    between writing a checkpoint and updating that file must not hide the checkpoint.
    """
    folder = os.path.join(model_dir, CHECKPOINT_SUBDIR)
    if not os.path.isdir(folder):
        return []
    steps = set()
    for name in os.listdir(folder):
        prefix, ext = os.path.splitext(name)
        if ext == ".index" and prefix.startswith("ckpt-") and prefix[5:].isdigit():
            steps.add(int(prefix[5:]))
    return [os.path.join(folder, f"ckpt-{step}") for step in sorted(steps, reverse=True)]


def verify_checkpoint(path: str) -> None:
    """Reads every tensor of a checkpoint, so truncation and bit flips (CRC32C) show before a restore.

    Raises:
      CheckpointError: naming the checkpoint and what is wrong with it.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError, OSError) as error:
        reason = getattr(error, "message", None) or str(error) or type(error).__name__
        raise CheckpointError(f"{path} is unreadable: {reason.splitlines()[0]}") from None


def restorable_checkpoint(model_dir: str, log=logging.getLogger("jointvae_tf")) -> str | None:
    """The newest checkpoint in model_dir that reads whole; None when there is none at all.

    An unreadable newer checkpoint is skipped with a warning naming it.

    Raises:
      CheckpointError: checkpoints exist but none is readable (naming each and why).
    """
    problems = []
    for path in checkpoint_paths(model_dir):
        try:
            verify_checkpoint(path)
        except CheckpointError as error:
            problems.append(str(error))
            log.warning("%s; falling back to an older checkpoint", error)
            continue
        return path
    if problems:
        raise CheckpointError(f"no readable checkpoint in {os.path.join(model_dir, CHECKPOINT_SUBDIR)}: "
                              + "; ".join(problems))
    return None


def variable_value(variable):
    """A Keras or tf variable's value as numpy, also for distributed (mirrored) variables.

    `float(variable)` fails on a MirroredVariable; reading through `convert_to_tensor` works
    under every strategy (and outside any).
    """
    return tf.convert_to_tensor(getattr(variable, "value", variable)).numpy()


def optimizer_step(optimizer) -> int:
    """The optimizer's iteration count as an int, also for distributed (mirrored) variables."""
    return int(variable_value(optimizer.iterations))


def learning_rate(optimizer) -> float:
    """The optimizer's learning rate as a float, also for distributed (mirrored) variables."""
    return float(variable_value(optimizer.learning_rate))


def checkpoint_step(path: str) -> int:
    """The step a checkpoint was saved at, from its name (ckpt-<step>)."""
    try:
        return int(os.path.basename(path).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"checkpoint {path} is not named ckpt-<step>") from None


LOSS_SCALE = "loss_scale"


class Checkpointer:
    """Saves and restores model + optimizer in model_dir/checkpoints, keeping the last `max_to_keep`.

    The optimizer's variables are created before restoring, so its iteration count (which
    drives the capacity schedules) and Adam's moments come back too.

    Under mixed_float16 the model's optimizer is a `keras.optimizers.LossScaleOptimizer`:
    its inner optimizer is saved as "optimizer", in the same layout as without loss
    scaling, and its loss scale apart as "loss_scale", so float32, mixed_bfloat16 and
    mixed_float16 runs restore each other's checkpoints (a checkpoint without a loss
    scale leaves a LossScaleOptimizer's at its initial value).
    """

    def __init__(self, model: JointVAE, model_dir: str, max_to_keep: int = 3):
        self.model, self.model_dir = model, model_dir
        objects = {"model": model}
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                if not optimizer.built:  # its loss scale variables are made by build()
                    optimizer.build(model.trainable_variables)
                objects["optimizer"] = optimizer.inner_optimizer
                objects[LOSS_SCALE] = tf.train.Checkpoint(
                    dynamic_scale=optimizer.dynamic_scale, step_counter=optimizer.step_counter)
            else:
                objects["optimizer"] = optimizer
        self._objects = objects
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(model_dir, CHECKPOINT_SUBDIR), max_to_keep=max_to_keep
        )

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, step: int | None = None) -> str:
        optimizer = getattr(self.model, "optimizer", None)
        if step is None and optimizer is not None:
            step = optimizer_step(optimizer)
        return self.manager.save(checkpoint_number=step)

    def restore(self, path: str | None = None) -> str | None:
        """Restores `path` (default: the newest readable checkpoint); returns the path restored, or None.

        Raises:
          CheckpointError: checkpoints exist but none is readable.
        """
        path = path or restorable_checkpoint(self.model_dir)
        if path is None:
            return None
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        checkpoint = self.checkpoint
        if LOSS_SCALE in self._objects and not _has_loss_scale(path):
            # Saved without loss scaling (float32 or mixed_bfloat16): restore all but the loss scale.
            checkpoint = tf.train.Checkpoint(**{k: v for k, v in self._objects.items() if k != LOSS_SCALE})
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
        return path


def _has_loss_scale(path: str) -> bool:
    """Whether the checkpoint at `path` holds a LossScaleOptimizer's loss scale (see `Checkpointer`)."""
    return any(name.startswith(LOSS_SCALE + "/") for name, _ in tf.train.list_variables(path))


def save_model_dir(model: JointVAE, model_dir: str, extra_config: dict[str, Any] | None = None) -> str:
    """Writes config.json and a checkpoint of `model` into model_dir; returns the checkpoint path."""
    config = dict(extra_config or {})
    config["model"] = model.get_config()
    os.makedirs(model_dir, exist_ok=True)
    write_json_atomic(os.path.join(model_dir, CONFIG_FILE), config)
    return Checkpointer(model, model_dir).save()


def _check_keras_archive(path: str) -> None:
    """Refuses a `.keras` file that is not a whole zip archive (Keras would say "File not found")."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path} exists but is not a readable .keras file (truncated or corrupt: {error})") from None
    if bad_member is not None:
        raise ValueError(f"{path} exists but is corrupt: its member {bad_member} fails the zip checksum")


def restore_model(source: str) -> JointVAE:
    """A trained JointVAE from a model_dir (its newest readable checkpoint) or a `.keras` file.

    Raises:
      FileNotFoundError: no such path, no config.json, or no checkpoint in the model_dir.
      ValueError: a corrupt `.keras` file or config.json; CheckpointError when no checkpoint reads.
    """
    if source.endswith(".keras"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source} not found")
        _check_keras_archive(source)
        try:
            model = keras.models.load_model(source)
        except (ValueError, OSError, EOFError, KeyError, TypeError) as error:
            reason = (str(error) or type(error).__name__).splitlines()[0]
            raise ValueError(f"{source} is a zip archive but not a loadable .keras model: {reason}") from None
        if not isinstance(model, JointVAE):
            raise ValueError(f"{source} holds a {type(model).__name__}, not a JointVAE")
        return model
    if not os.path.isdir(source):
        raise FileNotFoundError(f"model_dir {source} not found")
    config = read_config(source)
    path = restorable_checkpoint(source)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(source, CHECKPOINT_SUBDIR)}: train or import first")
    model = JointVAE.from_config(config["model"])
    checkpoint = tf.train.Checkpoint(model=model)
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    return model
