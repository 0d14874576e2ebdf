"""Data for JointVAE: one entry point, `load_dataset`, and the dSprites ground truth.

    images = jointvae_tf.data.load_dataset("dsprites", batch_size=64)   # [64, 64, 64, 1] batches
    images = jointvae_tf.data.load_dataset("mnist", manual_dir="data/mnist")  # [64, 32, 32, 1]
    data = jointvae_tf.data.DSprites()       # factors, index order, render(), metric sampling

Modules: `loader` (names -> datasets), `dsprites` (the procedural renderer),
`tfds` (TensorFlow Datasets offline), `files` (IDX, npz, image folders),
`pipeline` (shared preprocessing and batching).
"""

from jointvae_tf.data.dsprites import DSprites, render_values
from jointvae_tf.data.files import (
    image_folder_dataset,
    list_images,
    load_idx,
    load_npz,
    read_idx,
    read_image_header,
)
from jointvae_tf.data.loader import DATASET_NAMES, FILE_KINDS, load_dataset, parse_name
from jointvae_tf.data.tfds import TFDS_DATASETS
from jointvae_tf.data.tfds import prepare as prepare_tfds
from jointvae_tf.data.tfds import required_files as tfds_required_files

__all__ = [
    "DATASET_NAMES",
    "DSprites",
    "FILE_KINDS",
    "TFDS_DATASETS",
    "image_folder_dataset",
    "list_images",
    "load_dataset",
    "load_idx",
    "load_npz",
    "parse_name",
    "prepare_tfds",
    "read_idx",
    "read_image_header",
    "render_values",
    "tfds_required_files",
]
