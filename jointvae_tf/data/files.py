"""Local image files: MNIST-format IDX, numpy `.npz` archives, and folders of PNG / JPEG images.

IDX and `.npz` files are read whole into memory (uint8 [N, H, W, C]); image
folders are streamed, decoded by `tf.io` batch by batch. Every reader names the
file it could not use and why.
"""

import gzip
import os
import struct
import zipfile
import zlib

import numpy as np
import tensorflow as tf

from jointvae_tf.data import pipeline

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# File name prefixes of the MNIST / Fashion-MNIST splits.
_IDX_SPLITS = {"train": "train", "test": "t10k"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# First bytes of a zip archive (a local file header, or the end record of an empty one), and of an .npy file.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_SIGNATURE = b"\x93NUMPY"


def read_idx(path):
    """Reads an IDX file (the MNIST format), gzip-compressed or raw.

    Args:
      path: the file, e.g. `train-images-idx3-ubyte.gz`.

    Returns:
      A numpy array with the file's dimensions and type, e.g. uint8 [60000, 28, 28].

    Raises:
      FileNotFoundError: no such file.
      ValueError: bad magic number, or a truncated or corrupt file.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{path}: truncated or corrupt gzip data ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(
            f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()} "
            "(expected 0x0000TTDD, TT a type code in 08 09 0B 0C 0D 0E, DD the number of dimensions)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: {len(raw)} bytes, its header {list(dims)} announces {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(folder, split, kind):
    prefix = _IDX_SPLITS.get(split)
    if prefix is None:
        raise ValueError(f"IDX folders have splits {', '.join(_IDX_SPLITS)}, not {split!r}")
    ndim = 3 if kind == "images" else 1
    names = [f"{prefix}-{kind}-idx{ndim}-ubyte{ext}" for ext in (".gz", "")]
    for name in names:
        if tf.io.gfile.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load_idx(path, split="train"):
    """Images (and labels, when found) from IDX files.

    Args:
      path: an images file (its labels are the sibling file named with
        `labels-idx1` for `images-idx3`), or a folder holding
        `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`, of which `split`
        ("train" or "test") picks one pair.
      split: with a folder, the split; with a file, it must stay "train".

    Returns:
      (images uint8 [N, H, W, C], labels int64 [N] or None).
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        images_path = _find_idx(path, split, "images")
        if images_path is None:
            raise FileNotFoundError(
                f"no {_IDX_SPLITS[split]}-images-idx3-ubyte[.gz] in {path} for split {split!r}"
            )
        labels_path = _find_idx(path, split, "labels")
    else:
        if split != "train":
            raise ValueError(f"idx:{path} names one file: split must stay 'train', got {split!r}")
        images_path = path
        sibling = os.path.join(os.path.dirname(path), os.path.basename(path).replace("images-idx3", "labels-idx1"))
        labels_path = sibling if sibling != path and tf.io.gfile.exists(sibling) else None
    images = read_idx(images_path)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path} must hold uint8 images [N, H, W] or [N, H, W, C], got {images.dtype} {list(images.shape)}"
        )
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path).astype(np.int64)
        if len(labels) != len(images):
            raise ValueError(f"{labels_path} has {len(labels)} labels for the {len(images)} images of {images_path}")
    return images, labels


def _to_uint8_images(array, where):
    """Image arrays of any common encoding -> uint8 [N, H, W, C] in 0..255."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"{where} must be images [N, H, W] or [N, H, W, 1 or 3], got {list(array.shape)}")
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        # NaN would pass the range check below (comparisons with NaN are False) and become arbitrary bytes.
        finite = np.isfinite(array)
        if not finite.all():
            count = array.size - int(np.count_nonzero(finite))
            raise ValueError(
                f"{where} has {count} non-finite values (NaN or inf) among its {array.size}: "
                "expected finite floats in [0, 1] or [0, 255]"
            )
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise ValueError(f"{where} has float values in [{low}, {high}]: expected [0, 1] or [0, 255]")
        return np.round(array * (255.0 if high <= 1.0 else 1.0)).astype(np.uint8)
    if array.dtype != np.uint8:
        raise ValueError(f"{where} must be uint8, bool or float images, got {array.dtype}")
    # Binary images stored as 0/1 bytes (as dSprites stores them) become 0/255.
    return array * np.uint8(255) if array.max(initial=0) == 1 else array


def _check_npz_signature(path):
    """Raises ValueError, naming `path`, unless the file starts as a zip archive (an .npz is a zip of .npy files).

    Without this, numpy takes any other file for a pickle and asks to load it unsafely.
    """
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_SIGNATURES):
        return
    if not head:
        found = "the file is empty"
    elif head.startswith(_NPY_SIGNATURE):
        found = "it is a single .npy array (save it with np.savez(PATH, images=array))"
    else:
        found = f"it starts with {head!r}"
    raise ValueError(f"{path} is not an .npz archive (a zip of .npy arrays): {found}")


def _read_npz_array(archive, key, path):
    """`archive[key]` as a numpy array, or a ValueError naming `path` and `key`."""
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):  # object arrays: reading them would unpickle
            raise ValueError(f"{path}:{key} holds pickled objects, which are not loaded (allow_pickle=False)") from error
        raise ValueError(f"{path}:{key} is not a readable .npy array: {str(error).splitlines()[0]}") from error
    if not isinstance(array, np.ndarray):  # a zip member that is not an .npy file comes back as bytes
        raise ValueError(f"{path}:{key} is not an .npy array but a file of {len(array)} bytes")
    return array


def load_npz(path, split="train"):
    """Images (and labels, when present) from a `.npz` archive, read without pickle.

    Arrays are looked up by name: `x_{split}` / `y_{split}` (Keras' mnist.npz
    layout), else `imgs`, `images` or `x` with `labels` or `y`.

    Args:
      path: the archive.
      split: picks `x_{split}` in Keras-style archives.

    Returns:
      (images uint8 [N, H, W, C] in 0..255, labels numpy [N, ...] or None).

    Raises:
      FileNotFoundError: no such file.
      ValueError: a folder, not an .npz archive, truncated, no image array,
        pickled objects, non-finite or out-of-range floats, or as many labels as
        images; the message names the file (and the array).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not an .npz archive: name the .npz file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"npz file not found: {path}")
    try:
        _check_npz_signature(path)
        with np.load(path, allow_pickle=False) as archive:
            keys = archive.files
            image_key = next((k for k in (f"x_{split}", "imgs", "images", "x") if k in keys), None)
            if image_key is None:
                raise ValueError(f"{path} has no image array: expected x_{split}, imgs, images or x; it has {keys}")
            label_key = next((k for k in (f"y_{split}", "labels", "y") if k in keys), None)
            images = _read_npz_array(archive, image_key, path)
            labels = _read_npz_array(archive, label_key, path) if label_key else None
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is a truncated or corrupt npz archive: {error}") from error
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    images = _to_uint8_images(images, f"{path}:{image_key}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels


def list_images(folder):
    """All PNG and JPEG files under `folder` (recursively), sorted."""
    folder = os.fspath(folder)
    if not tf.io.gfile.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = []
    for root, _, names in tf.io.gfile.walk(folder):
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise ValueError(f"no images (.png, .jpg, .jpeg) in folder {folder}")
    return sorted(files)


def _decode(path, channels):
    return tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)


def _assert_complete(contents, path):
    """An op that fails, naming the file, unless a PNG ends with its IEND chunk or a JPEG with its EOI marker."""
    size = tf.strings.length(contents)
    is_png = tf.equal(tf.strings.substr(contents, 0, 4), b"\x89PNG")
    png_complete = tf.equal(tf.strings.substr(contents, tf.maximum(size - 8, 0), 4), b"IEND")
    tail = tf.io.decode_raw(tf.strings.substr(contents, tf.maximum(size - 32, 0), 32), tf.uint8)
    jpeg_complete = tf.reduce_any((tail[:-1] == 0xFF) & (tail[1:] == 0xD9))  # EOI, maybe with trailing bytes
    complete = tf.where(is_png, png_complete, jpeg_complete)
    return tf.debugging.Assert(complete, ["truncated or corrupt image file:", path])


def image_folder_dataset(folder, batch_size=64, shuffle=True, seed=0, image_size=64, channels=None):
    """Images of a folder (Chairs, CelebA, your own), centre cropped and resized.

    Args:
      folder: searched recursively for .png, .jpg and .jpeg files.
      batch_size, shuffle, seed: as in `load_dataset`.
      image_size: side of the output images.
      channels: 1 (grayscale) or 3 (RGB) to convert every image; None keeps the
        images' own channel count, which must then be the same (1 or 3) for all.

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, image_size, image_size, channels].
    """
    pipeline.check_batch_size(batch_size)
    files = list_images(folder)
    pipeline.check_enough_examples(len(files), batch_size, f"folder {folder}")
    if channels is None:
        channels = int(_decode(files[0], 0).shape[-1])
        if channels not in (1, 3):
            raise ValueError(f"{files[0]} has {channels} channels: pass channels=1 (grayscale) or 3 (RGB)")
        convert = 0
    elif channels in (1, 3):
        convert = channels
    else:
        raise ValueError(f"channels must be 1 (grayscale), 3 (RGB) or None, got {channels!r}")

    def load(path):
        contents = tf.io.read_file(path)
        with tf.control_dependencies([_assert_complete(contents, path)]):
            image = tf.io.decode_image(contents, channels=convert, expand_animations=False)
        same_channels = tf.debugging.Assert(
            tf.equal(tf.shape(image)[-1], channels),
            [f"mixed channel counts in folder {folder}: expected {channels} (as {files[0]}), pass channels=1 or 3;"
             " this file has another:", path],
        )
        with tf.control_dependencies([same_channels]):
            image = tf.ensure_shape(tf.identity(image), [None, None, channels])
        return tf.cast(pipeline.resize_images(image, image_size), tf.uint8), 0

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=pipeline.AUTOTUNE)
    return pipeline.finish(dataset, batch_size, False, seed, 0, with_labels=False)
