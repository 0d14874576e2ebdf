"""Local image files: MNIST-format IDX, numpy `.npz` archives, and folders of PNG / JPEG images.

IDX and `.npz` files are read whole into memory (uint8 [N, H, W, C]); image
folders are streamed, decoded by `tf.io` batch by batch, after a scan of every
file's header. Every reader names the file it could not use and why, in a
ValueError or FileNotFoundError raised before the first batch.
"""

import collections
import concurrent.futures
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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channels of `tf.io.decode_image(channels=0)` by PNG colour type (a palette with a tRNS chunk gives 4)...
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# ... and by JPEG component count (CMYK is converted to RGB).
_JPEG_CHANNELS = {1: 1, 3: 3, 4: 3}
# JPEG start-of-frame markers SOF0..SOF15, which are 0xC0..0xCF less DHT, JPG and DAC; and the markers without
# a length field (TEM, RST0..RST7).
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])
# A JPEG is complete when its EOI marker is in its last bytes (some writers append a few after it).
_JPEG_TAIL_BYTES = 32
# Files whose headers are read at once from a remote file system (gs://...), where each read waits on the network.
_REMOTE_SCAN_THREADS = 32
CHANNELS_HINT = "pass --channels=1 or --channels=3 (channels=1/3 from Python)"


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


def idx_paths(path, split="train"):
    """(images file, labels file or None) that `load_idx(path, split)` reads; its errors for a bad path or split."""
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
    return images_path, labels_path


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
    images_path, labels_path = idx_paths(path, split)
    images = read_idx(images_path)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path} must hold uint8 images [N, H, W] or [N, H, W, 1 or 3], "
            f"got {images.dtype} {list(images.shape)}"
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


def check_npz_signature(path):
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


def read_npz_array(archive, key, path):
    """`archive[key]` as a numpy array, or a ValueError naming `path` and `key`."""
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):  # object arrays: reading them would unpickle
            message = f"{path}:{key} holds pickled objects, which are not loaded (allow_pickle=False)"
            raise ValueError(message) from error
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
        check_npz_signature(path)
        with np.load(path, allow_pickle=False) as archive:
            keys = archive.files
            image_key = next((k for k in (f"x_{split}", "imgs", "images", "x") if k in keys), None)
            if image_key is None:
                raise ValueError(f"{path} has no image array: expected x_{split}, imgs, images or x; it has {keys}")
            label_key = next((k for k in (f"y_{split}", "labels", "y") if k in keys), None)
            images = read_npz_array(archive, image_key, path)
            labels = read_npz_array(archive, label_key, path) if label_key else None
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is a truncated or corrupt npz archive: {error}") from error
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    images = _to_uint8_images(images, f"{path}:{image_key}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels


def list_images(folder):
    """All PNG and JPEG files under `folder` (recursively), by name, sorted.

    Raises:
      FileNotFoundError: no such folder.
      ValueError: `folder` is a file, or holds no .png, .jpg or .jpeg file.
    """
    folder = os.fspath(folder)
    if not tf.io.gfile.isdir(folder):
        if tf.io.gfile.exists(folder):
            raise ValueError(f"{folder} is a file, not a folder of images (npz:PATH and idx:PATH take files)")
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = []
    for root, _, names in tf.io.gfile.walk(folder):
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise ValueError(f"no images (.png, .jpg, .jpeg) in folder {folder}")
    return sorted(files)


# What `read_image_header` finds: format "png" or "jpeg", and the decoded image's shape.
ImageHeader = collections.namedtuple("ImageHeader", ["format", "height", "width", "channels"])


def _open_binary(path):
    """Opens a file for reading: local files with `open` (a header scan is 3x faster), URLs with tf.io.gfile."""
    return tf.io.gfile.GFile(path, "rb") if "://" in path else open(path, "rb")  # pylint: disable=consider-using-with


def _read_exactly(f, size, what):
    data = f.read(size)
    if len(data) != size:
        raise ValueError(f"the file ends inside its {what}")
    return data


def _png_header(f):
    """(height, width, channels) from the IHDR chunk (and a tRNS chunk for palettes); `f` is past the signature."""
    _, kind = struct.unpack(">I4s", _read_exactly(f, 8, "PNG header"))
    if kind != b"IHDR":
        raise ValueError(f"corrupt PNG: its first chunk is {kind!r}, not IHDR")
    width, height, _, color_type = struct.unpack(">IIBB", _read_exactly(f, 13, "PNG header")[:10])
    if color_type not in _PNG_CHANNELS:
        raise ValueError(f"corrupt PNG: unknown colour type {color_type}")
    channels = _PNG_CHANNELS[color_type]
    if color_type == 3:  # a palette: RGBA if a tRNS chunk, which precedes the pixels, makes colours transparent
        f.seek(4, os.SEEK_CUR)  # the IHDR's CRC
        while len(chunk := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", chunk)
            if kind in (b"tRNS", b"IDAT", b"IEND"):
                channels = 4 if kind == b"tRNS" else 3
                break
            f.seek(length + 4, os.SEEK_CUR)
    return height, width, channels


def _jpeg_header(f):
    """(height, width, channels) from the frame header (SOF); `f` is past the SOI marker."""
    while True:
        if _read_exactly(f, 1, "JPEG header") != b"\xff":
            raise ValueError("corrupt JPEG: no marker where a header segment should start")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            marker = _read_exactly(f, 1, "JPEG header")[0]
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan
            raise ValueError("corrupt JPEG: no frame header (SOF) before the image data")
        (length,) = struct.unpack(">H", _read_exactly(f, 2, "JPEG header"))
        if marker in _JPEG_SOF_MARKERS:
            _, height, width, components = struct.unpack(">BHHB", _read_exactly(f, 6, "JPEG frame header"))
            if components not in _JPEG_CHANNELS:
                raise ValueError(f"unsupported JPEG with {components} colour components")
            return height, width, _JPEG_CHANNELS[components]
        if length < 2:
            raise ValueError(f"corrupt JPEG: a segment of length {length}")
        f.seek(length - 2, os.SEEK_CUR)


def read_image_header(path):
    """The format, size and channel count of a PNG or JPEG file, read without decoding it.

    Only the header (PNG: signature and IHDR chunk; JPEG: the segments up to the
    frame header) and the last bytes are read, so thousands of files take a
    second. A file is complete when a PNG ends with its IEND chunk and a JPEG
    has its EOI marker in its last 32 bytes: a truncated JPEG would otherwise
    decode, grey where its data is missing.

    Args:
      path: the image file, of any name: its contents say which format it is.

    Returns:
      `ImageHeader(format, height, width, channels)`: format "png" or "jpeg";
      channels as `tf.io.decode_image(channels=0)` yields them (1 grey, 2 grey
      and alpha, 3 RGB, 4 RGBA).

    Raises:
      ValueError: the file is unreadable, not a PNG or JPEG, corrupt in its header
        or truncated; the one-line message names it.
    """
    path = os.fspath(path)
    try:
        with _open_binary(path) as f:
            head = f.read(8)
            if head == _PNG_SIGNATURE:
                kind, (height, width, channels) = "png", _png_header(f)
            elif head[:3] == b"\xff\xd8\xff":
                f.seek(2)
                kind, (height, width, channels) = "jpeg", _jpeg_header(f)
            else:
                found = f"it starts with {head!r}" if head else "the file is empty"
                raise ValueError(f"not a PNG or JPEG image: {found}")
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - _JPEG_TAIL_BYTES, 0))
            tail = f.read()
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(f"cannot read image {path}: {getattr(error, 'strerror', None) or error}") from error
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    complete = tail[-8:-4] == b"IEND" if kind == "png" else b"\xff\xd9" in tail
    if not complete:
        end = "its IEND chunk" if kind == "png" else "its EOI marker"
        raise ValueError(f"{path}: truncated {kind.upper()} image: it does not end with {end} ({size} bytes)")
    return ImageHeader(kind, height, width, channels)


def _header_or_error(path):
    try:
        return read_image_header(path)
    except ValueError as error:
        return error


def _folder_channels(folder, files, channels):
    """The channel count the images of `folder` are decoded to, after checking every file's header.

    Args:
      folder: the folder, for messages.
      files: its image files (`list_images`).
      channels: the requested count, 1, 3 or None (the images' own).

    Returns:
      `channels`, or, when None, the images' common count (1 or 3).

    Raises:
      ValueError: a file is not a complete PNG / JPEG (the first is named, with
        the count of others), or `channels` is None and the images do not all
        have 1 or all have 3 channels.
    """
    if "://" in folder:  # remote file systems: keep many requests in flight
        with concurrent.futures.ThreadPoolExecutor(_REMOTE_SCAN_THREADS) as pool:
            headers = list(pool.map(_header_or_error, files))
    else:  # local files are read fastest in one thread (threads would only contend for the GIL)
        headers = [_header_or_error(path) for path in files]
    errors = [str(h) for h in headers if isinstance(h, ValueError)]
    if errors:
        more = f" (and {len(errors) - 1} more bad files in folder {folder})" if len(errors) > 1 else ""
        raise ValueError(errors[0] + more)
    if channels is not None:
        return channels
    found = collections.Counter(h.channels for h in headers)
    first = {}  # channel count -> its first file
    for path, header in zip(files, headers, strict=True):
        first.setdefault(header.channels, path)
    if len(found) > 1:
        counts = "; ".join(f"{n} images with {c} channels, e.g. {first[c]}" for c, n in sorted(found.items()))
        raise ValueError(f"mixed channel counts in folder {folder} ({counts}): {CHANNELS_HINT} to convert every image")
    (only,) = found
    if only not in (1, 3):
        raise ValueError(f"{first[only]} has {only} channels (with alpha): {CHANNELS_HINT} to drop the alpha")
    return only


def image_folder_dataset(folder, batch_size=64, shuffle=True, seed=0, image_size=64, channels=None,
                         start=None):
    """Images of a folder (Chairs, CelebA, your own), centre cropped and resized.

    Args:
      folder: searched recursively for .png, .jpg and .jpeg files.
      batch_size, shuffle, seed, start: as in `load_dataset`.
      image_size: side of the output images.
      channels: 1 (grayscale) or 3 (RGB) to convert every image; None keeps the
        images' own channel count, which must then be the same (1 or 3) for all.

    Every file's header and end are checked here, before any is decoded (see
    `read_image_header`), so that a bad file stops the run now, named, rather
    than as a TensorFlow error in the middle of training. A file corrupt inside
    its pixel data, with an intact header and end, is only found by decoding.

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, image_size, image_size, channels].

    Raises:
      FileNotFoundError: no such folder.
      ValueError: not a folder, no images, fewer than `batch_size`, a file that is
        not a complete PNG / JPEG, or channel counts that `channels=None` cannot
        keep (mixed, or with alpha); the message names a file.
    """
    folder = os.fspath(folder)
    pipeline.check_batch_size(batch_size)
    pipeline.check_channels(channels)

    def scan():
        found = list_images(folder)
        return found, _folder_channels(folder, found, channels)

    files, channels = pipeline.load_once(("folder", os.path.abspath(folder), channels), scan)
    pipeline.check_enough_examples(len(files), batch_size, f"folder {folder}")

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, channels])
        return tf.cast(pipeline.resize_images(image, image_size), tf.uint8), 0

    paths = tf.constant(files)
    indices = pipeline.batch_indices(len(files), batch_size, shuffle, seed, start).unbatch()
    dataset = indices.map(lambda index: load(tf.gather(paths, index)), num_parallel_calls=pipeline.AUTOTUNE)
    return pipeline.finish(dataset, batch_size, False, seed, 0, with_labels=False)
