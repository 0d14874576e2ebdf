"""Imports a model trained with the original PyTorch JointVAE into a model_dir.

    jointvae-import-torch --checkpoint_dir=path/to/reference_run --model_dir=runs/mnist_imported

--checkpoint_dir holds the reference's model.pt and specs.json. The model_dir gets the
project's config.json (recording where the weights came from) and a TF checkpoint, like a
model_dir the training binary writes, so evaluation and export take it as they are. It is
built next to its destination and renamed into place, so a failed import leaves nothing
half-written; an existing, non-empty model_dir is replaced only with --overwrite.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from jointvae_tf import checkpoints  # noqa: E402
from jointvae_tf.compat import torch as torch_compat  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "Folder holding the reference's model.pt and specs.json.")
flags.DEFINE_string("model_dir", None, "The model_dir to write (config.json and a TF checkpoint).")
flags.DEFINE_bool("overwrite", False, "Replace a model_dir that already holds files.")
flags.mark_flags_as_required(["checkpoint_dir", "model_dir"])


def _check_destination(model_dir: str, overwrite: bool) -> None:
    """Refuses to replace a file, or a non-empty model_dir unless `overwrite`."""
    if not os.path.exists(model_dir):
        return
    if not os.path.isdir(model_dir):
        raise ValueError(f"--model_dir {model_dir} exists and is not a folder")
    if os.listdir(model_dir) and not overwrite:
        holds = "holds a checkpoint" if checkpoints.latest_checkpoint(model_dir) else "is not empty"
        raise ValueError(f"--model_dir {model_dir} already {holds}: pass --overwrite to replace it")


def _move_into_place(staging: str, model_dir: str) -> None:
    """Renames the finished `staging` folder to `model_dir`, replacing (then deleting) what was there."""
    if not os.path.exists(model_dir):
        os.rename(staging, model_dir)
        return
    previous = f"{staging}.previous"
    os.rename(model_dir, previous)
    try:
        os.rename(staging, model_dir)
    except OSError:
        os.rename(previous, model_dir)
        raise
    shutil.rmtree(previous)


def import_checkpoint(checkpoint_dir: str, model_dir: str, overwrite: bool = False) -> str:
    """Converts checkpoint_dir/{model.pt, specs.json} into `model_dir`; returns its TF checkpoint path.

    Raises:
      FileNotFoundError: checkpoint_dir, model.pt or specs.json is missing (named).
      ValueError: bad specs or weights (naming the key), or a model_dir that may not be replaced.
    """
    if not os.path.isdir(checkpoint_dir):
        raise FileNotFoundError(f"--checkpoint_dir {checkpoint_dir} not found")
    _check_destination(model_dir, overwrite)
    specs_path = os.path.join(checkpoint_dir, torch_compat.SPECS_FILE)
    specs = torch_compat.read_specs(specs_path)
    model = torch_compat.load_torch_checkpoint(os.path.join(checkpoint_dir, torch_compat.STATE_DICT_FILE), specs)
    extra_config = {
        "imported_from": {"checkpoint_dir": os.path.abspath(checkpoint_dir), "specs": specs},
        "dataset": torch_compat.dataset_name(specs),
    }

    target = os.path.abspath(model_dir)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # A hidden sibling (same filesystem, so the final rename is atomic); os.mkdir honours the umask.
    staging = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.import-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)
    try:
        checkpoints.save_model_dir(model, staging, extra_config)
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checkpoints.latest_checkpoint(model_dir)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        checkpoint = import_checkpoint(FLAGS.checkpoint_dir, FLAGS.model_dir, FLAGS.overwrite)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"jointvae-import-torch: error: {error}", file=sys.stderr)
        return 1
    print(f"imported {FLAGS.checkpoint_dir} into {FLAGS.model_dir}: {checkpoint}")
    return 0


def run():
    """Console script entry point (jointvae-import-torch)."""
    app.run(main)


if __name__ == "__main__":
    run()
