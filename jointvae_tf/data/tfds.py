"""TensorFlow Datasets, offline: load a prepared dataset, or build it from local files.

`tfds.load` would download what is missing. Here nothing is downloaded: a dataset
already prepared under `data_dir` is read as is; otherwise it is built from
`manual_dir`, a folder holding the original download files under their original
names (for mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), through
`tfds.download.DownloadConfig(manual_dir=...)`, which checks them against TFDS's
registered checksums. Each dataset extracts into its own folder, since MNIST and
Fashion-MNIST share file names.
"""

import dataclasses
import importlib
import importlib.resources
import logging
import os
import sys

import numpy as np
import tensorflow as tf

from jointvae_tf.data import pipeline


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """How one TFDS dataset enters the model.

    Attributes:
      image_size: side of the square images the model takes.
      label_keys: feature keys stacked into the labels (int64), in this order.
      label_group: a nested feature dict whose entries are the labels (celeb_a's attributes).
      in_memory: whether a split is small enough to be decoded once into memory
        and served from there (as local IDX files are), rather than streamed.
    """

    image_size: int
    label_keys: tuple = ()
    label_group: str = ""
    in_memory: bool = False


TFDS_DATASETS = {
    # 28x28 resized to 32x32 as the reference does.
    "mnist": TfdsSpec(image_size=32, label_keys=("label",), in_memory=True),
    "fashion_mnist": TfdsSpec(image_size=32, label_keys=("label",), in_memory=True),
    # 218x178, centre cropped to 178x178, resized to 64x64; labels: the 40 binary attributes.
    "celeb_a": TfdsSpec(image_size=64, label_group="attributes"),
    # 64x64x3; labels: the six factor classes in the data set's own order.
    "shapes3d": TfdsSpec(
        image_size=64,
        label_keys=("label_floor_hue", "label_wall_hue", "label_object_hue", "label_scale", "label_shape",
                    "label_orientation"),
    ),
}

_SHUFFLE_BUFFER = 16384


def _tfds():
    """Imports tensorflow_datasets, working around a missing `importlib_resources`.

    tensorflow-datasets 4.9.10 refers to the `importlib_resources` backport while
    locating a builder's code, yet only requires it on Python < 3.9; the standard
    library's `importlib.resources` (with `.abc.Traversable`) stands in for it.
    """
    try:
        importlib.import_module("importlib_resources")
    except ImportError:
        importlib.import_module("importlib.resources.abc")
        sys.modules.setdefault("importlib_resources", importlib.resources)
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top

    return tensorflow_datasets


def required_files(name):
    """The original file names the TFDS builder of `name` expects in `manual_dir`."""
    builder_cls = _tfds().builder_cls(name)
    return sorted(info.filename for info in (builder_cls.url_infos or {}).values() if info.filename)


def prepare(name, data_dir=None, manual_dir=None):
    """Returns the TFDS builder of `name`, built from `manual_dir` if not yet prepared.

    Args:
      name: a TFDS dataset name, e.g. "mnist".
      data_dir: where prepared datasets live (TFDS's default, ~/tensorflow_datasets, if None).
      manual_dir: folder with the original download files, used when the dataset
        is not prepared under `data_dir`.

    Returns:
      A prepared `tfds.core.DatasetBuilder`.

    Raises:
      FileNotFoundError: not prepared, and `manual_dir` lacks files (all named).
      ValueError: a file in `manual_dir` is not the expected one (truncated or another version),
        or `data_dir` cannot be written.
    """
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir else None)
    if builder.is_prepared():
        return builder
    files = required_files(name)
    where = os.fspath(manual_dir) if manual_dir else None
    missing = [f for f in files if not (where and os.path.isfile(os.path.join(where, f)))]
    if missing:
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in data_dir={builder.data_dir_root!s} and there is no network "
            f"to download it: put {', '.join(files)} in a folder and pass it as manual_dir "
            f"(missing in manual_dir={where}: {', '.join(missing)})"
        )
    download_dir = os.path.join(builder.data_dir_root, "downloads")
    config = tfds.download.DownloadConfig(
        manual_dir=where, extract_dir=os.path.join(download_dir, "extracted", name)
    )
    logging.info("Building TFDS %s from %s into %s", name, where, builder.data_dir)
    try:
        builder.download_and_prepare(download_dir=download_dir, download_config=config)
    except tfds.download.download_manager.NonMatchingChecksumError as error:
        raise ValueError(
            f"a file in manual_dir={where} is not the original {name} download (truncated or another "
            f"version?): {str(error).splitlines()[0]}"
        ) from error
    except (OSError, tf.errors.OpError) as error:  # e.g. data_dir is read-only, or a file
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise ValueError(
            f"cannot build TFDS dataset {name!r} in data_dir={builder.data_dir_root!s}: {reason} "
            f"({getattr(error, 'filename', None) or 'writing'}); pass a writable data_dir"
        ) from error
    return builder


def tfds_dataset(name, split="train", data_dir=None, manual_dir=None, batch_size=64, shuffle=True, seed=0,
                 with_labels=False, image_size=None, channels=None, start=None):
    """A batched TFDS dataset at the model's size (see `load_dataset`).

    `channels` 1 or 3 decodes every image to grayscale or RGB; None keeps the
    dataset's own (1 for mnist and fashion_mnist, 3 for celeb_a and shapes3d).
    `start` (a stream's first batch) is exact for the data sets held in memory; the
    streamed ones (read through a shuffle buffer) start a fresh order drawn from
    (seed, start) instead, so a resumed run does not repeat the first batches.

    Returns:
      A `tf.data.Dataset` of float32 images in [0, 1], [batch, size, size, channels],
      or of `(images, labels)` pairs with int64 labels [batch] or [batch, num_labels].
    """
    if name not in TFDS_DATASETS:
        raise ValueError(f"unknown TFDS dataset {name!r}: known are {', '.join(sorted(TFDS_DATASETS))}")
    spec = TFDS_DATASETS[name]
    size = image_size or spec.image_size
    pipeline.check_batch_size(batch_size)
    pipeline.check_channels(channels)
    pipeline.check_start(start)
    builder = prepare(name, data_dir, manual_dir)
    tfds = _tfds()
    try:
        num_examples = builder.info.splits[split].num_examples
    except (KeyError, ValueError) as error:
        raise ValueError(f"{name} has no split {split!r}: it has {', '.join(builder.info.splits)}") from error
    pipeline.check_enough_examples(num_examples, batch_size, f"{name}[{split}]")
    streamed = shuffle and not spec.in_memory
    fresh = bool(start) and streamed  # a resumed shuffled stream cannot skip to its position: a new order
    stream_seed = int(np.random.SeedSequence([seed, start]).generate_state(1)[0]) if fresh else seed
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=streamed,
        read_config=tfds.ReadConfig(shuffle_seed=stream_seed, try_autocache=False),
        decoders={"image": tfds.decode.SkipDecoding()},  # decoded below, in parallel
    )
    height, width, own_channels = builder.info.features["image"].shape  # e.g. (28, 28, 1)
    image_shape = (height, width, channels or own_channels)
    label_keys = spec.label_keys

    def select(example):
        image = tf.io.decode_image(example["image"], channels=image_shape[-1], expand_animations=False)
        image = tf.ensure_shape(image, image_shape)
        if not spec.in_memory:  # resized before the shuffle buffer, which then holds small images
            image = tf.cast(pipeline.resize_images(image, size), tf.uint8)
        if spec.label_group:
            group = example[spec.label_group]
            label = tf.stack([tf.cast(group[key], tf.int64) for key in sorted(group)])
        elif len(label_keys) == 1:
            label = tf.cast(example[label_keys[0]], tf.int64)
        else:
            label = tf.stack([tf.cast(example[key], tf.int64) for key in label_keys])
        return image, label

    dataset = dataset.map(select, num_parallel_calls=pipeline.AUTOTUNE)
    if not spec.in_memory:
        buffer = min(num_examples, _SHUFFLE_BUFFER)
        if start is not None:
            dataset = dataset.repeat()
            if fresh:
                logging.info("%s[%s] is streamed: the run resumed at batch %d reads a fresh order (seed %d, %d), "
                             "not the rest of the uninterrupted run's", name, split, start, seed, start)
            elif start:
                dataset = dataset.skip(start * batch_size)
        return pipeline.finish(dataset, batch_size, shuffle, stream_seed, buffer, with_labels)
    # Decoded once (a few seconds for MNIST's 60,000 images), then gathered by shuffled indices.
    def decode():
        images, labels = zip(*dataset.batch(8192).as_numpy_iterator(), strict=True)
        return pipeline.resize_array(np.concatenate(images), size), np.concatenate(labels)

    key = ("tfds", name, split, os.path.abspath(builder.data_dir), size, channels)
    images, labels = pipeline.load_once(key, decode, fingerprint=pipeline.files_fingerprint(builder.data_dir))
    return pipeline.array_dataset(images, labels, batch_size, shuffle, seed, with_labels,
                                  source=f"{name}[{split}]", start=start)
