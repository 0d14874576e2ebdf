"""Imports a model trained with the original PyTorch JointVAE into a model_dir.

    jointvae-import-torch --checkpoint_dir=path/to/reference_run --model_dir=runs/mnist_imported

--checkpoint_dir holds the reference's model.pt and specs.json. The model_dir gets the
project's config.json (recording where the weights came from) and a TF checkpoint, like a
model_dir the training binary writes, so evaluation and export take it as they are. It is
built next to its destination and renamed into place, so a failed import leaves nothing
half-written.

--model_dir may not be, contain or sit inside --checkpoint_dir (compared as real paths), so
an import never replaces its own source. An existing, non-empty model_dir is replaced only
with --overwrite, and only if an earlier import wrote it: its config.json has the
"imported_from" key this binary writes, and it holds nothing but config.json and
checkpoints/. Anything else is refused, and nothing is deleted.

Errors (missing or corrupt files, a model_dir that may not be written) print one line,
`jointvae-import-torch: error: ...`, and exit 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from jointvae_tf import fileio  # noqa: E402
from jointvae_tf.training import checkpoints
from jointvae_tf.compat import torch as torch_compat  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "Folder holding the reference's model.pt and specs.json.")
flags.DEFINE_string("model_dir", None, "The model_dir to write (config.json and a TF checkpoint).")
flags.DEFINE_bool("overwrite", False, "Replace a model_dir that an earlier import wrote (and nothing else).")
flags.mark_flags_as_required(["checkpoint_dir", "model_dir"])


# What an import writes into a model_dir (see checkpoints.save_model_dir).
IMPORTED_ENTRIES = frozenset({checkpoints.CONFIG_FILE, checkpoints.CHECKPOINT_SUBDIR})


def _written_by_import(model_dir: str) -> bool:
    """Whether model_dir's config.json is one an import wrote: a JSON object with "imported_from"."""
    try:
        with open(os.path.join(model_dir, checkpoints.CONFIG_FILE), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):  # absent, unreadable, not UTF-8 or not JSON
        return False
    return isinstance(config, dict) and "imported_from" in config


def foreign_entries(model_dir: str) -> list[str]:
    """The names in model_dir an import did not write: all of them unless its config.json is an import's."""
    names = sorted(os.listdir(model_dir))
    if not _written_by_import(model_dir):
        return names
    return [name for name in names if name not in IMPORTED_ENTRIES]


def _check_destination(model_dir: str, overwrite: bool) -> None:
    """Refuses a file, a non-empty model_dir without `overwrite`, and one an import did not write."""
    if not os.path.exists(model_dir):
        return
    if not os.path.isdir(model_dir):
        raise ValueError(f"--model_dir {model_dir} exists and is not a folder")
    if not os.listdir(model_dir):
        return
    if not overwrite:
        holds = "holds a checkpoint" if checkpoints.latest_checkpoint(model_dir) else "is not empty"
        raise ValueError(f"--model_dir {model_dir} already {holds}: pass --overwrite to replace it")
    foreign = foreign_entries(model_dir)
    if foreign:
        raise ValueError(
            f"--model_dir {model_dir} holds files that were not written by jointvae-import-torch "
            f"({fileio.list_names(foreign)}): "
            "--overwrite replaces only an earlier import and will not delete them; choose another --model_dir"
        )


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
      ValueError: bad specs or weights (naming the key), a model_dir over checkpoint_dir, or one
        that may not be replaced.
      OSError: a file that cannot be read or written.
    """
    if not os.path.isdir(checkpoint_dir):
        raise FileNotFoundError(f"--checkpoint_dir {checkpoint_dir} not found")
    fileio.check_output_location(model_dir, {"--checkpoint_dir": checkpoint_dir}, "--model_dir")
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
        _check_destination(target, overwrite)  # again: files may have appeared while the import ran
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checkpoints.latest_checkpoint(model_dir)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        checkpoint = import_checkpoint(FLAGS.checkpoint_dir, FLAGS.model_dir, FLAGS.overwrite)
    except (ValueError, OSError, ImportError) as error:  # FileNotFoundError is an OSError
        print(f"jointvae-import-torch: error: {error}", file=sys.stderr)
        return 1
    print(f"imported {FLAGS.checkpoint_dir} into {FLAGS.model_dir}: {checkpoint}")
    return 0


def run():
    """Console script entry point (jointvae-import-torch)."""
    app.run(main)


if __name__ == "__main__":
    run()
