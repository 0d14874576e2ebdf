"""Models trained by this project, shipped inside the package, ready to encode and decode offline.

    import jointvae_tf as jv
    jv.pretrained.available()            # ["mnist", ...], sorted
    model = jv.pretrained.load("mnist")  # a JointVAE, no optimizer
    jv.pretrained.info("mnist")          # the model card: dataset, recipe, steps, seed, metrics
    jv.pretrained.path("mnist")          # .../pretrained/mnist/model.keras, for the binaries:
    # jointvae-evaluate --model_dir=$(python -c 'import jointvae_tf as jv; print(jv.pretrained.path("mnist"))')

Each model is one folder `<root>/<name>/` holding

    model.keras   the model saved uncompiled: weights and architecture, no optimizer state; by
                  default the weights are stored as float16 (half the bytes; Keras loads them into
                  the model's float32 variables, so a loaded model computes in float32 with
                  weights rounded to float16: the card's metrics are measured on exactly those)
    config.json   {"model": ..., "dataset": ..., recipe settings, "step"}: what `evaluation.load_model`
                  reads beside a .keras file to know the dataset (so jointvae-evaluate and
                  jointvae-export take `path(name)` as their --model_dir, unchanged)
    card.json     the model card (`info`): dataset, preset, recipe, step, seed, metrics, ...

The root is this package's folder, or the folder named by the environment variable
JOINTVAE_PRETRAINED_DIR, or the `root` argument of every function (in that order of
precedence: argument, variable, package). `pack` makes an entry from a trained model_dir;
`setup.py` ships the entries' files as package data.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from typing import Any, Callable

import h5py
import numpy as np

from jointvae_tf import fileio
from jointvae_tf.training import checkpoints
from jointvae_tf.model import JointVAE

ENV_VAR = "JOINTVAE_PRETRAINED_DIR"
MODEL_FILE = "model.keras"
CONFIG_FILE = checkpoints.CONFIG_FILE
CARD_FILE = "card.json"
ENTRY_FILES = (MODEL_FILE, CONFIG_FILE, CARD_FILE)
# Entry names are folder names inside a Python package: lower case, digits, "_", "-", ".".
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# Settings of the run's config.json that make its recipe (copied into config.json and the card).
RECIPE_SETTINGS = ("preset", "batch_size", "learning_rate", "seed", "channels")
RECIPE_MODEL_SETTINGS = ("image_shape", "latent_spec", "temperature", "cont_capacity", "disc_capacity",
                         "straight_through", "discrete_kl", "likelihood", "category_balance",
                         "latent_independence")
# How model.keras stores the weights: "float16" halves the file (the loaded variables stay float32).
WEIGHTS_DTYPES = ("float16", "float32")
WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a Keras 3 `.keras` zip archive


def default_root() -> str:
    """The folder of the models shipped with the package (this package's folder)."""
    return os.path.dirname(os.path.abspath(__file__))


def root_dir(root: str | os.PathLike | None = None) -> str:
    """The folder entries are read from: `root`, else $JOINTVAE_PRETRAINED_DIR, else `default_root()`."""
    if root is not None:
        return os.fspath(root)
    return os.environ.get(ENV_VAR) or default_root()


def _is_entry(folder: str) -> bool:
    return all(os.path.isfile(os.path.join(folder, name)) for name in ENTRY_FILES)


def available(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the models in the root (folders holding model.keras, config.json and card.json), sorted."""
    folder = root_dir(root)
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder)
                  if NAME_PATTERN.fullmatch(name) and _is_entry(os.path.join(folder, name)))


def _entry_dir(name: str, root: str | os.PathLike | None) -> str:
    """The folder of entry `name`; ValueError naming it and the available ones when there is none."""
    names = available(root)
    if not isinstance(name, str) or name not in names:
        shown = ", ".join(names) if names else "none"
        raise ValueError(f"no pretrained model named {name!r} in {root_dir(root)}: available: {shown}")
    return os.path.join(root_dir(root), name)


def path(name: str, root: str | os.PathLike | None = None) -> str:
    """The `.keras` file of model `name`: what `jointvae-evaluate` and `jointvae-export` take as --model_dir."""
    return os.path.join(_entry_dir(name, root), MODEL_FILE)


def load(name: str, root: str | os.PathLike | None = None) -> JointVAE:
    """Model `name` as a JointVAE ready to encode and decode (uncompiled; no network access)."""
    return checkpoints.restore_model(path(name, root))


def info(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The model card of `name` (card.json): dataset, preset, recipe, step, seed, metrics, and what the packer added."""
    card_path = os.path.join(_entry_dir(name, root), CARD_FILE)
    with open(card_path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------------ making entries
def check_name(name: str) -> str:
    """`name` if it can name an entry (a package data folder), else a one-line ValueError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"pretrained model name {name!r} is not allowed: use lower-case letters, digits, "
                         "'_', '-' and '.', starting with a letter or digit (e.g. mnist, dsprites)")
    return name


def _weights_only(model: JointVAE) -> JointVAE:
    """`model` without optimizer: itself when uncompiled, else a fresh JointVAE holding its weights."""
    if getattr(model, "optimizer", None) is None:
        return model
    fresh = JointVAE.from_config(model.get_config())
    fresh.set_weights(model.get_weights())
    return fresh


def _source_config(source: str) -> dict[str, Any]:
    """The run's config.json: in the model_dir, or beside a .keras file."""
    folder = os.path.dirname(os.path.abspath(source)) if source.endswith(".keras") else source
    return checkpoints.read_config(folder)


def _source_step(source: str) -> int | None:
    """The step of the checkpoint `restore_model` reads from a model_dir (None for a .keras file)."""
    if source.endswith(".keras"):
        return None
    latest = checkpoints.restorable_checkpoint(source)
    return checkpoints.checkpoint_step(latest) if latest else None


def _check_replaceable(entry: str, overwrite: bool) -> None:
    """Refuses an existing entry unless `overwrite`, and anything at `entry` that is not an entry."""
    if not os.path.lexists(entry):
        return
    if not os.path.isdir(entry) or os.path.islink(entry):
        raise ValueError(f"{entry} exists and is not a pretrained entry folder: remove it or choose another name")
    extra = sorted(set(os.listdir(entry)) - set(ENTRY_FILES))
    if extra:
        raise ValueError(f"{entry} holds files a pretrained entry does not ({fileio.list_names(extra)}): "
                         "it is not replaced, even with overwrite; move them or choose another name")
    if not overwrite:
        raise ValueError(f"pretrained model {os.path.basename(entry)} already exists in {os.path.dirname(entry)}: "
                         "pass overwrite=True (--overwrite) to replace it")


def pack(
    model_dir: str,
    name: str,
    dest_root: str | os.PathLike | None = None,
    card: dict[str, Any] | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
    weights_dtype: str = "float16",
    measure: Callable[[JointVAE], dict[str, Any]] | None = None,
) -> str:
    """Makes entry `dest_root/name/` from a trained model_dir (or a .keras file with config.json beside it).

    Writes model.keras (the newest readable checkpoint's weights, saved uncompiled: no optimizer
    state), config.json (the model, the dataset, the recipe settings, the step) and card.json
    (`card`'s keys over the recipe, dataset, step and seed read from the run). The entry is
    built in a staging folder beside it and renamed into place, so `available()` never sees a
    partial entry; files and folders get the umask's permissions.

    Args:
      model_dir: a model_dir written by training (config.json + checkpoints), or a .keras file.
      name: the entry's name (see `check_name`).
      dest_root: where entries live; default `root_dir()` (the package unless $JOINTVAE_PRETRAINED_DIR).
      card: model card data, e.g. {"metrics": {...}, "pick": ...}; JSON-able.
      dataset: the dataset name recorded for evaluation; default the run's. A run on local files
        (idx:PATH, npz:PATH, folder:PATH) must name it (e.g. "mnist"): a path of the training
        machine means nothing where the package is installed.
      overwrite: replace an existing entry of that name (only a folder holding entry files).
      weights_dtype: how model.keras stores the weights, one of WEIGHTS_DTYPES. "float16" (default)
        rounds every float32 weight to float16 and deflates the archive: about half the bytes,
        loaded back into float32 variables.
      measure: optional callable(model) -> dict, called on the model loaded back from the staged
        model.keras (the very file that ships, before it is published); its keys are added to
        the card, so the card's figures are those of the shipped weights.

    Returns:
      The entry's folder.

    Raises:
      ValueError / FileNotFoundError: one line naming the bad name, source, dataset or destination.
    """
    check_name(name)
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype {weights_dtype!r} is not allowed: use one of {', '.join(WEIGHTS_DTYPES)}")
    source = os.fspath(model_dir)
    config = _source_config(source)
    dataset = dataset if dataset is not None else config.get("dataset")
    if not isinstance(dataset, str) or not dataset or ":" in dataset:
        raise ValueError(f"dataset {dataset!r} of {source} cannot be shipped: pass dataset= a dataset name "
                         "(e.g. mnist, dsprites), not a local path or nothing")
    dest_root = os.path.abspath(root_dir(dest_root))
    entry = os.path.join(dest_root, name)
    fileio.check_output_location(entry, {"model_dir": source}, "pretrained entry")
    _check_replaceable(entry, overwrite)

    model = _weights_only(checkpoints.restore_model(source))
    step = _source_step(source)
    settings = {key: config[key] for key in RECIPE_SETTINGS if key in config}
    entry_config = {"model": model.get_config(), "dataset": dataset, "step": step, **settings}
    model_config = entry_config["model"]
    recipe = {**settings, **{key: model_config[key] for key in RECIPE_MODEL_SETTINGS if key in model_config}}
    card_data = {"name": name, "dataset": dataset, "preset": config.get("preset"), "step": step,
                 "seed": config.get("seed"), "recipe": recipe, "weights_dtype": weights_dtype,
                 "num_parameters": int(model.count_params()), **(card or {})}

    os.makedirs(dest_root, exist_ok=True)
    staging = fileio.make_unique_dir(dest_root, f".tmp-{name}-")
    try:
        with fileio.atomic_path(os.path.join(staging, MODEL_FILE)) as tmp:
            model.save(tmp)
            if weights_dtype == "float16":
                _store_float16(tmp)
        if measure is not None:
            card_data.update(measure(checkpoints.restore_model(os.path.join(staging, MODEL_FILE))))
        fileio.write_json(os.path.join(staging, CONFIG_FILE), entry_config, allow_nan=False)
        fileio.write_json(os.path.join(staging, CARD_FILE), card_data)
        _publish(staging, entry, overwrite)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return entry


def _float16_weights(weights_h5: bytes) -> bytes:
    """The Keras weights file `weights_h5` with every float32 array stored as float16 (same groups and attributes)."""

    def copy(source: h5py.Group, dest: h5py.Group) -> None:
        dest.attrs.update(source.attrs)
        for key, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, dest.create_group(key))
            else:
                value = item[()]
                if isinstance(value, np.ndarray) and value.dtype == np.float32:
                    value = value.astype(np.float16)
                dest.create_dataset(key, data=value)
                dest[key].attrs.update(item.attrs)

    out = io.BytesIO()
    with h5py.File(io.BytesIO(weights_h5), "r") as source, h5py.File(out, "w") as dest:
        copy(source, dest)
    return out.getvalue()


def _store_float16(keras_path: str) -> None:
    """Rewrites the `.keras` archive at keras_path with float16 weights, deflated (Keras reads it back as float32)."""
    with zipfile.ZipFile(keras_path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    if WEIGHTS_MEMBER not in dict(members):
        raise ValueError(f"{keras_path} has no {WEIGHTS_MEMBER}: not a Keras 3 .keras archive")
    with zipfile.ZipFile(keras_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for filename, data in members:
            archive.writestr(filename, _float16_weights(data) if filename == WEIGHTS_MEMBER else data)


def _publish(staging: str, entry: str, overwrite: bool) -> None:
    """Renames the staging folder to `entry`, moving an earlier entry aside first (checked again: races)."""
    _check_replaceable(entry, overwrite)
    old = None
    if os.path.lexists(entry):
        old = fileio.make_unique_dir(os.path.dirname(entry), f".old-{os.path.basename(entry)}-")
        os.replace(entry, os.path.join(old, "entry"))
    try:
        os.rename(staging, entry)
    except OSError:
        if old is not None:  # put the earlier entry back
            os.replace(os.path.join(old, "entry"), entry)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
