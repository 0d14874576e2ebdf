"""The input pipeline shared by every data source: preprocessing, shuffling, batching.

Every dataset that `load_dataset` returns ends the same way: images are centre
cropped to a square, resized to the size the model takes, shuffled, batched with
`drop_remainder=True` (so that every replica of a distribution strategy gets full
batches) and prefetched. Images leave the pipeline as float32 in [0, 1], shaped
[batch, height, width, channels].

Training reads a stream (`start` given): epoch after epoch, epoch e in the order of a
permutation drawn from (seed, e) alone, so the batch at any position is known without
reading the ones before it, and a run resumed at step s reads exactly the batches the
uninterrupted run would have (`batch_indices`).

Within `loading_once()`, a source read for one dataset (decoded arrays, a folder's
checked file list, the dSprites archive) is reused by the next dataset built from it:
training builds one epoch (for its size and example pictures) and then the stream,
from one copy of the images.

In-memory arrays (`array_dataset`) are kept for the whole process, per source, while
its files are unchanged (`load_once(..., fingerprint=...)`): TensorFlow holds every
`numpy_function` of an eagerly built dataset, and the arrays it gathers from, in its
global graph until the process ends, so a source read afresh for each dataset would
add a copy each time (a run that trains one epoch per call grew 80 MB an epoch on MNIST).
"""

import contextlib
import os

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
_loaded = None  # {key: source} inside `loading_once()`, else None (nothing kept)
_kept = {}  # {key: (fingerprint, source)}: sources kept for the process (`load_once` with a fingerprint)


@contextlib.contextmanager
def loading_once():
    """Inside it, `load_once` reads each source once and hands out the same copy after.

    Outside, nothing is kept: a later call reads the files again (they may have changed).
    Nested uses share the outermost one's sources.
    """
    global _loaded
    outer = _loaded
    _loaded = {} if outer is None else outer
    try:
        yield
    finally:
        _loaded = outer


def load_once(key, load, fingerprint=None):
    """`load()`, or the copy an earlier call with this hashable `key` read.

    Without `fingerprint`, a copy is reused inside `loading_once()` only. With one (a
    hashable that changes when the source's files change, see `files_fingerprint`),
    the copy is kept for the process and reused while the fingerprint is the same;
    a changed one reads the source again and replaces the copy.
    """
    if fingerprint is not None:
        kept = _kept.get(key)
        if kept is None or kept[0] != fingerprint:
            _kept[key] = kept = (fingerprint, load())
        return kept[1]
    if _loaded is None:
        return load()
    if key not in _loaded:
        _loaded[key] = load()
    return _loaded[key]


def files_fingerprint(path):
    """What `load_once` compares to tell that a source changed: size and mtime of a file, or of a folder's files.

    A folder's entries are listed one level deep (IDX folders, prepared TFDS versions
    are flat enough: a rewrite replaces or touches their files). A missing path gives
    None: no fingerprint, so nothing is kept and the read reports the missing file.
    """
    path = os.fspath(path)
    try:
        if not tf.io.gfile.isdir(path):
            stat = tf.io.gfile.stat(path)
            return (stat.length, stat.mtime_nsec)
        entries = []
        for name in sorted(tf.io.gfile.listdir(path)):
            stat = tf.io.gfile.stat(os.path.join(path, name))
            entries.append((name, stat.length, stat.mtime_nsec, stat.is_directory))
        return tuple(entries)
    except tf.errors.NotFoundError:
        return None


def check_batch_size(batch_size):
    """Raises ValueError unless `batch_size` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def check_channels(channels):
    """Raises ValueError unless `channels` is None (the images' own), 1 (grayscale) or 3 (RGB)."""
    if channels is None:
        return
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale), 3 (RGB) or None (the images' own), got {channels!r}")


def check_enough_examples(num_examples, batch_size, source):
    """Raises ValueError when `source` cannot fill one batch (it would yield nothing)."""
    if num_examples < batch_size:
        raise ValueError(
            f"{source} has {num_examples} images, fewer than batch_size={batch_size}: "
            "with drop_remainder=True the dataset would be empty"
        )


def check_start(start):
    """Raises ValueError unless `start` is None (one epoch) or a batch position >= 0 (a stream)."""
    if start is None:
        return
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be None (one epoch) or a batch position >= 0, got {start!r}")


def batch_indices(num_examples, batch_size, shuffle, seed, start=None):
    """Batches of example indices, int64 [batch_size], for a source of `num_examples` examples.

    Args:
      num_examples: how many examples the source holds.
      batch_size: indices per batch; each epoch drops its last partial batch.
      shuffle: whether an epoch is a random permutation (else 0, 1, ... in order).
      seed: the permutations' seed.
      start: None: one epoch, a new permutation each time the dataset is iterated
        (from `seed`). An int: an endless stream from its batch `start`, epoch e being
        the permutation `stateless_shuffle(range(num_examples), seed=(seed, e))`: the
        stream depends on (seed, position) alone, so any position is reached at once.

    Returns:
      A `tf.data.Dataset` of int64 [batch_size]: num_examples // batch_size batches an epoch.
    """
    check_start(start)
    if start is None:
        indices = tf.data.Dataset.range(num_examples)
        if shuffle:
            indices = indices.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
        return indices.batch(batch_size, drop_remainder=True)
    per_epoch = num_examples // batch_size
    first_epoch, offset = divmod(int(start), per_epoch)

    def epoch_batches(epoch):
        order = tf.range(num_examples, dtype=tf.int64)
        if shuffle:
            # Philox named, not auto_select's per-device choice: the same order on any machine.
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(seed, tf.int64), epoch]), alg="philox")
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[:per_epoch * batch_size], [per_epoch, batch_size]))

    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
    return epochs.flat_map(epoch_batches).skip(offset)


def resize_images(images, size):
    """Centre crops images to a square and resizes them to `size` x `size`.

    Bilinear, with antialiasing when shrinking, then rounded to whole grey levels as
    PIL (the reference's torchvision `Resize`) does, so the result is what the
    reference feeds its model. Images already `size` x `size` pass unchanged.

    Args:
      images: uint8 or float tensor in [0, 255], [batch, height, width, channels]
        or [height, width, channels], with a static height and width or not.
      size: side of the output images, in pixels.

    Returns:
      float32 tensor in [0, 255] (whole numbers), [..., size, size, channels].
    """
    images = tf.convert_to_tensor(images)
    static = images.shape[-3:-1]
    if static[0] == size and static[1] == size:
        return tf.cast(images, tf.float32)
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    side = tf.minimum(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    images = images[..., top:top + side, left:left + side, :]
    # Antialiasing only matters when shrinking, and is slow: skip it for upsampling (MNIST 28 -> 32).
    shrinks = None in static or max(static) > size
    resized = tf.image.resize(tf.cast(images, tf.float32), [size, size], method="bilinear", antialias=shrinks)
    return tf.clip_by_value(tf.round(resized), 0.0, 255.0)


def convert_channels(images, channels):
    """Converts grayscale images to RGB (the grey repeated) or RGB to grayscale (the luma).

    The luma is ITU-R 601's, as `tf.image.rgb_to_grayscale` computes it.

    Args:
      images: uint8 tensor or numpy array [..., height, width, 1 or 3].
      channels: 1, 3, or None to keep the images' own.

    Returns:
      uint8 [..., height, width, channels]: `images` itself if it already has
      `channels`, else a tensor.
    """
    if channels is None or images.shape[-1] == channels:
        return images
    if channels == 3:
        return tf.image.grayscale_to_rgb(tf.convert_to_tensor(images))
    return tf.image.rgb_to_grayscale(images)


def to_unit_float(images):
    """[..., H, W, C] uint8 or float in [0, 255] -> float32 in [0, 1]."""
    return tf.cast(images, tf.float32) / 255.0


def finish(dataset, batch_size, shuffle, seed, shuffle_buffer, with_labels, preprocess=None):
    """Shuffles, batches, converts and prefetches a dataset of single examples.

    Args:
      dataset: elements `(image, label)` with uint8 images [H, W, C] (label may be
        any tensor; it is dropped unless `with_labels`).
      batch_size: examples per batch; the last partial batch is dropped.
      shuffle: whether to shuffle (reshuffled each epoch, from `seed`).
      seed: the shuffle seed.
      shuffle_buffer: size of the shuffle buffer.
      with_labels: whether elements stay `(images, labels)` or become `images`.
      preprocess: optional function applied to each batch of uint8 images
        [batch, H, W, C] before the conversion to [0, 1] (e.g. a resize).

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, H', W', C], or of
      `(images, labels)` pairs.
    """
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)

    def convert(images, labels):
        if preprocess is not None:
            images = preprocess(images)
        images = to_unit_float(images)
        return (images, labels) if with_labels else images

    dataset = dataset.map(convert, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def array_dataset(images, labels, batch_size, shuffle, seed, with_labels, source, start=None):
    """A batched dataset over in-memory arrays, gathered by shuffled indices.

    The arrays are not copied into the graph (a 737,280-image dSprites archive
    stays one numpy array): each batch of indices is gathered with numpy.

    Args:
      images: uint8 numpy array [N, H, W, C], already at the model's size.
      labels: numpy array [N, ...] or None.
      batch_size, shuffle, seed, with_labels: as in `finish`.
      source: name of the data, for error messages.
      start: None for one epoch, or the stream's first batch (see `batch_indices`).

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, H, W, C], or of
      `(images, labels)` pairs.
    """
    check_batch_size(batch_size)
    num = len(images)
    check_enough_examples(num, batch_size, source)
    if with_labels and labels is None:
        raise ValueError(f"{source} has no labels: call with with_labels=False")
    image_shape = [batch_size, *images.shape[1:]]
    batches = batch_indices(num, batch_size, shuffle, seed, start)

    def gather(index):
        batch = tf.numpy_function(lambda i: images[i], [index], tf.as_dtype(images.dtype), stateful=False)
        batch = to_unit_float(tf.ensure_shape(batch, image_shape))
        if not with_labels:
            return batch
        label_shape = [batch_size, *labels.shape[1:]]
        label = tf.numpy_function(lambda i: labels[i], [index], tf.as_dtype(labels.dtype), stateful=False)
        return batch, tf.ensure_shape(label, label_shape)

    return batches.map(gather, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def resize_array(images, size, chunk=4096, *, channels=None):
    """Resizes an in-memory uint8 array [N, H, W, C] to [N, size, size, channels] uint8.

    See `resize_images` and `convert_channels`; `channels` None keeps C. Works
    `chunk` images at a time, so a large array is never converted whole to float.
    """
    channels = channels or images.shape[3]
    if images.shape[1:] == (size, size, channels):
        return images
    out = np.empty((len(images), size, size, channels), np.uint8)
    for start in range(0, len(images), chunk):
        batch = convert_channels(images[start:start + chunk], channels)
        out[start:start + chunk] = resize_images(batch, size).numpy().astype(np.uint8)
    return out
