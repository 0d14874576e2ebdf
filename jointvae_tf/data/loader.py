"""`load_dataset`: one entry point from a dataset name to a batched `tf.data.Dataset`.

Names:
  mnist, fashion_mnist     TFDS, 28x28 resized to 32x32 (bilinear, as the reference)
  dsprites                 the procedural renderer (64x64), or the official archive
                           when `manual_dir` holds it
  celeb_a                  TFDS, centre cropped and resized to 64x64
  shapes3d                 TFDS, 64x64
  folder:PATH              PNG / JPEG images under PATH, centre cropped, 64x64
  idx:PATH                 MNIST-format IDX files (a file, or a folder of splits)
  npz:PATH                 a numpy archive (Keras' mnist.npz layout, an `imgs`
                           array, or the official dSprites archive)
"""

import os

import numpy as np

from jointvae_tf.data import dsprites as dsprites_lib
from jointvae_tf.data import files, pipeline
from jointvae_tf.data import tfds as tfds_lib

DATASET_NAMES = ("mnist", "fashion_mnist", "dsprites", "celeb_a", "shapes3d")
FILE_KINDS = ("folder", "idx", "npz")


def parse_name(name):
    """Splits a dataset name into (kind, path): ("mnist", None), ("npz", "/data/x.npz"), ...

    Raises:
      ValueError: an unknown name (the message lists the known ones) or an empty path.
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}")
    kind, sep, path = name.partition(":")
    if sep and kind in FILE_KINDS:
        if not path:
            raise ValueError(f"dataset {name!r} names no path: use {kind}:PATH")
        return kind, os.path.expanduser(path)
    if not sep and name in DATASET_NAMES:
        return name, None
    known = ", ".join(DATASET_NAMES + tuple(f"{k}:PATH" for k in FILE_KINDS))
    raise ValueError(f"unknown dataset {name!r}: known are {known}")


def default_image_size(height, width):
    """The model's input size for images of a given size: 32 up to 32x32 (MNIST-like), else 64."""
    return 32 if max(height, width) <= 32 else 64


def _is_dsprites_archive(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "imgs" in archive.files and "latents_classes" in archive.files
    except Exception:  # pylint: disable=broad-except  (load_npz reports unreadable files)
        return False


def _dsprites(split, manual_dir, batch_size, shuffle, seed, with_labels, image_size, channels, archive=None,
              start=None):
    if split not in ("train", "all"):
        raise ValueError(f"dsprites has one split, 'train' (all 737,280 images), not {split!r}")
    if image_size not in (None, dsprites_lib.IMAGE_SIZE):
        raise ValueError(f"dsprites images are 64x64, got image_size={image_size}")
    if channels not in (None, 1):  # its ground-truth metrics feed the model rendered 1-channel images
        raise ValueError(
            f"dsprites images are grayscale: drop --channels or pass --channels=1 (channels=None/1 from Python), "
            f"not {channels}"
        )
    if archive is None and manual_dir:
        candidate = os.path.join(os.fspath(manual_dir), dsprites_lib.ARCHIVE_FILENAME)
        archive = candidate if os.path.isfile(candidate) else None
    data = pipeline.load_once(
        ("dsprites", os.path.abspath(archive) if archive else None),
        lambda: dsprites_lib.DSprites.from_npz(archive) if archive else dsprites_lib.DSprites(),
    )
    return data.dataset(batch_size=batch_size, shuffle=shuffle, seed=seed, with_labels=with_labels, start=start)


def _fingerprint(kind, path, split):
    """The state of the files an npz or IDX source reads (`pipeline.load_once`); None when one is missing."""
    try:
        paths = [path] if kind == "npz" else [p for p in files.idx_paths(path, split) if p is not None]
    except (FileNotFoundError, ValueError):
        return None  # the read names the problem
    fingerprints = [pipeline.files_fingerprint(p) for p in paths]
    return None if None in fingerprints else tuple(fingerprints)


def load_dataset(name, split="train", data_dir=None, manual_dir=None, batch_size=64, shuffle=True, seed=0,
                 with_labels=False, *, image_size=None, channels=None, start=None):
    """A shuffled, batched, prefetched dataset of images at the size the model takes.

    Args:
      name: mnist, fashion_mnist, dsprites, celeb_a, shapes3d, or folder:PATH,
        idx:PATH, npz:PATH for local files.
      split: the split ("train", "test", TFDS slicing such as "train[:90%]");
        dsprites has only "train".
      data_dir: where TFDS datasets are prepared (TFDS's default if None).
      manual_dir: folder of original download files: a TFDS dataset not prepared
        in `data_dir` is built from it without network; for dsprites, the official
        archive `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` if it is there.
      batch_size: images per batch; the last partial batch is dropped
        (`drop_remainder=True`), so batch shapes are static for distribution.
      shuffle: shuffle (afresh every epoch) or keep the source order.
      seed: the shuffle seed.
      with_labels: yield `(images, labels)`: class labels [batch] (mnist,
        fashion_mnist, IDX and npz files with labels), factor classes [batch, 5]
        (dsprites) or [batch, 6] (shapes3d), attributes [batch, 40] (celeb_a).
      image_size: override the output size (default: 32 for mnist, fashion_mnist
        and images up to 32x32, else 64).
      channels: 1 (grayscale) or 3 (RGB) to convert every image (RGB to
        grayscale by its luma, grayscale to RGB by repeating it); None keeps the
        images' own (an image folder's must then all be 1 or all 3). Every source
        takes it but dsprites, which is grayscale and refuses 3, since its
        ground-truth metrics render 1-channel images.
      start: None: one epoch, reshuffled each time it is iterated. A batch
        position: the endless training stream from that batch on, epoch e in the
        order of a permutation drawn from (seed, e) alone, so a run resumed at step
        s reads exactly what the uninterrupted run would have; streamed TFDS data
        sets (celeb_a, shapes3d), read through a shuffle buffer, start a fresh
        order drawn from (seed, start) instead.

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, size, size,
      channels], or of `(images, labels)` pairs.

    Raises:
      ValueError: unknown name, bad argument, unreadable file, or too few images
        for one batch. FileNotFoundError: a missing file or folder (named).
    """
    kind, path = parse_name(name)
    pipeline.check_batch_size(batch_size)
    pipeline.check_channels(channels)
    pipeline.check_start(start)
    if kind == "dsprites":
        return _dsprites(split, manual_dir, batch_size, shuffle, seed, with_labels, image_size, channels, start=start)
    if kind in tfds_lib.TFDS_DATASETS:
        return tfds_lib.tfds_dataset(kind, split, data_dir, manual_dir, batch_size, shuffle, seed, with_labels,
                                     image_size=image_size, channels=channels, start=start)
    if kind == "folder":
        if with_labels:
            raise ValueError(f"{name}: image folders have no labels, call with with_labels=False")
        return files.image_folder_dataset(path, batch_size, shuffle, seed, image_size or 64, channels, start=start)
    if kind == "npz":
        if os.path.isfile(path) and _is_dsprites_archive(path):
            return _dsprites(split, None, batch_size, shuffle, seed, with_labels, image_size, channels, archive=path,
                             start=start)

    def read():
        images, labels = files.load_npz(path, split) if kind == "npz" else files.load_idx(path, split)
        size = image_size or default_image_size(*images.shape[1:3])
        return pipeline.resize_array(images, size, channels=channels), labels

    images, labels = pipeline.load_once((kind, os.path.abspath(path), split, image_size, channels), read,
                                        fingerprint=_fingerprint(kind, path, split))
    return pipeline.array_dataset(images, labels, batch_size, shuffle, seed, with_labels, source=name, start=start)
