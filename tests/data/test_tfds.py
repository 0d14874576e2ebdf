"""TFDS offline: build mnist from the original files in ../shared/data/mnist, with the network cut off."""

import os
import re
import shutil
import socket

import numpy as np
import pytest
from shared_data import shared_data

import jointvae_tf.data as jd
from jointvae_tf.data import tfds as tfds_lib

MNIST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
               "train-labels-idx1-ubyte.gz"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def mnist_data_dir(tmp_path_factory):
    """mnist built once from the original files into a temporary data_dir, without network."""
    data_dir = tmp_path_factory.mktemp("tfds")
    with pytest.MonkeyPatch.context() as patch:
        def refuse(*args, **kwargs):
            raise AssertionError(f"network access attempted: {args}")

        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        builder = jd.prepare_tfds("mnist", data_dir=data_dir, manual_dir=shared_data("mnist"))
    assert builder.is_prepared()
    return data_dir


def test_required_files_are_the_original_names():
    assert jd.tfds_required_files("mnist") == MNIST_FILES
    assert jd.tfds_required_files("fashion_mnist") == MNIST_FILES  # the same names: extract dirs kept apart


def test_builds_mnist_offline_and_loads_it(mnist_data_dir, no_network):
    # Extracted under a folder of its own, so Fashion-MNIST's same-named files cannot collide.
    extracted = sorted(os.listdir(os.path.join(mnist_data_dir, "downloads", "extracted", "mnist")))
    assert extracted == [f"GZIP.{name}" for name in MNIST_FILES]
    dataset = jd.load_dataset("mnist", split="test", data_dir=mnist_data_dir, batch_size=100, shuffle=False,
                              with_labels=True)
    assert dataset.cardinality().numpy() == 100
    images, labels = next(iter(dataset))
    assert images.shape == (100, 32, 32, 1) and images.dtype.name == "float32"
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) == 1.0
    # The same images and labels as the IDX files (TFDS stores them in another order), resized the same way.
    idx_images, idx_labels = next(iter(jd.load_dataset(f"idx:{shared_data('mnist')}", split="test", batch_size=10000,
                                                       shuffle=False, with_labels=True)))
    label_of = {image.tobytes(): label for image, label in zip(idx_images.numpy(), idx_labels.numpy(), strict=True)}
    assert [label_of.get(image.tobytes()) for image in images.numpy()] == labels.numpy().tolist()


def test_prepared_dataset_needs_no_manual_dir(mnist_data_dir, no_network):
    dataset = jd.load_dataset("mnist", split="test", data_dir=mnist_data_dir, batch_size=64, seed=1)
    assert dataset.cardinality().numpy() == 10000 // 64
    first = next(iter(dataset)).numpy()
    again = jd.load_dataset("mnist", split="test", data_dir=mnist_data_dir, seed=1)
    np.testing.assert_array_equal(first, next(iter(again)).numpy())
    assert jd.load_dataset("mnist", split="train[:10%]", data_dir=mnist_data_dir).cardinality().numpy() == 6000 // 64


def test_unprepared_without_files_names_what_to_put_where(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as error:
        jd.load_dataset("fashion_mnist", data_dir=tmp_path / "tfds")
    message = str(error.value)
    assert "'fashion_mnist' is not prepared" in message and "manual_dir" in message
    assert all(name in message for name in MNIST_FILES)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(f"missing in manual_dir={empty}: t10k-images")):
        jd.load_dataset("mnist", data_dir=tmp_path / "tfds", manual_dir=empty)


def test_truncated_download_file_is_named(tmp_path, no_network):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in MNIST_FILES:
        shutil.copy(shared_data("mnist", name), manual / name)
    labels = manual / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:1000])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        jd.load_dataset("mnist", data_dir=tmp_path / "tfds", manual_dir=manual)


def test_unknown_split_lists_the_splits(mnist_data_dir):
    with pytest.raises(ValueError, match="no split 'validation': it has"):
        jd.load_dataset("mnist", split="validation", data_dir=mnist_data_dir)


def test_too_large_batch_is_an_error_not_an_empty_dataset(mnist_data_dir):
    with pytest.raises(ValueError, match="fewer than batch_size=20000"):
        jd.load_dataset("mnist", split="test", data_dir=mnist_data_dir, batch_size=20000)


def test_every_tfds_dataset_has_a_spec():
    assert set(tfds_lib.TFDS_DATASETS) == {"mnist", "fashion_mnist", "celeb_a", "shapes3d"}
    assert tfds_lib.TFDS_DATASETS["mnist"].image_size == 32
    assert tfds_lib.TFDS_DATASETS["celeb_a"].image_size == 64
    with pytest.raises(ValueError, match="unknown TFDS dataset 'cifar10'"):
        tfds_lib.tfds_dataset("cifar10")
