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

import json
import os
from typing import Any

import keras
import tensorflow as tf

from jointvae_tf import fileio
from jointvae_tf.model import JointVAE

CONFIG_FILE = "config.json"
CHECKPOINT_SUBDIR = "checkpoints"
# Fields of the model config that a checkpoint's variables depend on.
SHAPE_FIELDS = ("image_shape", "latent_spec")


def write_json_atomic(path: str, value: Any) -> None:
    """Writes JSON to `path` atomically (temporary file in the same folder, then a rename)."""
    fileio.write_json(path, value)


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


def latest_checkpoint(model_dir: str) -> str | None:
    return tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))


def optimizer_step(optimizer) -> int:
    """The optimizer's iteration count as an int, also for distributed (mirrored) variables."""
    return int(tf.convert_to_tensor(optimizer.iterations.value).numpy())


def checkpoint_step(path: str) -> int:
    """The step a checkpoint was saved at, from its name (ckpt-<step>)."""
    try:
        return int(os.path.basename(path).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"checkpoint {path} is not named ckpt-<step>") from None


class Checkpointer:
    """Saves and restores model + optimizer in model_dir/checkpoints, keeping the last `max_to_keep`.

    The optimizer's variables are created before restoring, so its iteration count (which
    drives the capacity schedules) and Adam's moments come back too.
    """

    def __init__(self, model: JointVAE, model_dir: str, max_to_keep: int = 3):
        self.model = model
        objects = {"model": model}
        if getattr(model, "optimizer", None) is not None:
            objects["optimizer"] = model.optimizer
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
        """Restores `path` (default: the latest); returns the path restored, or None if there is none."""
        path = path or self.latest
        if path is None:
            return None
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            optimizer.build(self.model.trainable_variables)
        status = self.checkpoint.restore(path)
        status.assert_existing_objects_matched()
        return path


def save_model_dir(model: JointVAE, model_dir: str, extra_config: dict[str, Any] | None = None) -> str:
    """Writes config.json and a checkpoint of `model` into model_dir; returns the checkpoint path."""
    config = dict(extra_config or {})
    config["model"] = model.get_config()
    os.makedirs(model_dir, exist_ok=True)
    write_json_atomic(os.path.join(model_dir, CONFIG_FILE), config)
    return Checkpointer(model, model_dir).save()


def restore_model(source: str) -> JointVAE:
    """A trained JointVAE from a model_dir (its latest checkpoint) or a `.keras` file.

    Raises:
      FileNotFoundError: no such path, no config.json, or no checkpoint in the model_dir.
    """
    if source.endswith(".keras"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source} not found")
        model = keras.models.load_model(source)
        if not isinstance(model, JointVAE):
            raise ValueError(f"{source} holds a {type(model).__name__}, not a JointVAE")
        return model
    if not os.path.isdir(source):
        raise FileNotFoundError(f"model_dir {source} not found")
    config = read_config(source)
    path = latest_checkpoint(source)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(source, CHECKPOINT_SUBDIR)}: train or import first")
    model = JointVAE.from_config(config["model"])
    checkpoint = tf.train.Checkpoint(model=model)
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    return model
