"""load_dataset: names, sizes, labels, and clear errors for bad input."""

import os
import re
import socket

import numpy as np
import pytest
from shared_data import shared_data
from PIL import Image

import jointvae_tf.data as jd



def test_parse_name():
    assert jd.parse_name("mnist") == ("mnist", None)
    assert jd.parse_name("npz:/data/x.npz") == ("npz", "/data/x.npz")
    assert jd.parse_name("folder:~/chairs") == ("folder", os.path.expanduser("~/chairs"))


@pytest.mark.parametrize("name", ["cifar10", "MNIST", "dsprites:", "zip:/x", "mnist:train", ""])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(ValueError) as error:
        jd.load_dataset(name)
    message = str(error.value)
    assert re.search(r"unknown dataset|names no path", message)
    if "unknown" in message:
        for known in jd.DATASET_NAMES + ("folder:PATH", "idx:PATH", "npz:PATH"):
            assert known in message
        assert jd.DATASET_NAMES == ("mnist", "fashion_mnist", "dsprites", "celeb_a", "shapes3d")


def test_empty_path_is_an_error():
    with pytest.raises(ValueError, match="'npz:' names no path"):
        jd.load_dataset("npz:")


def test_dsprites_is_built_in():
    dataset = jd.load_dataset("dsprites", batch_size=16, with_labels=True)
    assert dataset.cardinality().numpy() == 737280 // 16
    images, factors = next(iter(dataset))
    assert images.shape == (16, 64, 64, 1) and factors.shape == (16, 5)
    np.testing.assert_array_equal(images.numpy()[..., 0], jd.DSprites().render(factors.numpy()))
    with pytest.raises(ValueError, match="dsprites has one split, 'train'"):
        jd.load_dataset("dsprites", split="test")
    with pytest.raises(ValueError, match="dsprites images are 64x64"):
        jd.load_dataset("dsprites", image_size=32)


def test_dsprites_uses_the_renderer_when_manual_dir_lacks_the_archive(tmp_path):
    dataset = jd.load_dataset("dsprites", manual_dir=tmp_path, batch_size=8, shuffle=False)
    expected = jd.DSprites().render(jd.DSprites.index_to_factors(np.arange(8)))
    np.testing.assert_array_equal(next(iter(dataset)).numpy()[..., 0], expected)


def test_idx_folder_is_mnist_at_32(tmp_path):
    dataset = jd.load_dataset(f"idx:{shared_data('mnist')}", split="test", batch_size=50, shuffle=False, with_labels=True)
    assert dataset.cardinality().numpy() == 200
    images, labels = next(iter(dataset))
    assert images.shape == (50, 32, 32, 1) and images.dtype.name == "float32"
    np.testing.assert_array_equal(labels.numpy()[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        jd.load_dataset(f"idx:{tmp_path}")


def test_npz_sizes_and_labels(tmp_path):
    path = tmp_path / "small.npz"
    rng = np.random.RandomState(0)
    np.savez(path, x_train=rng.randint(0, 256, (40, 28, 28), dtype=np.uint8), y_train=np.arange(40),
             x_test=rng.randint(0, 256, (12, 100, 80, 3), dtype=np.uint8))
    images, labels = next(iter(jd.load_dataset(f"npz:{path}", batch_size=8, with_labels=True)))
    assert images.shape == (8, 32, 32, 1) and labels.shape == (8,)
    test = next(iter(jd.load_dataset(f"npz:{path}", split="test", batch_size=4)))
    assert test.shape == (4, 64, 64, 3)
    assert next(iter(jd.load_dataset(f"npz:{path}", batch_size=4, image_size=16))).shape == (4, 16, 16, 1)
    with pytest.raises(ValueError, match="has no labels"):
        jd.load_dataset(f"npz:{path}", split="test", batch_size=4, with_labels=True)
    with pytest.raises(ValueError, match="has 12 images, fewer than batch_size=64"):
        jd.load_dataset(f"npz:{path}", split="test")
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        jd.load_dataset(f"npz:{tmp_path / 'nothing.npz'}")


def _count_calls(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_array_sources_are_kept_while_unchanged_and_folders_scanned_once_per_run(tmp_path, monkeypatch):
    """An npz or IDX source is read once per process while its files are unchanged (TensorFlow keeps the
    arrays of every dataset built from it anyway); a changed file is read again. A folder's scan is
    reused inside `loading_once()` only (training builds one epoch and then the stream)."""
    from jointvae_tf.data import files, pipeline

    path = tmp_path / "small.npz"
    np.savez(path, x_train=np.random.RandomState(0).randint(0, 256, (40, 28, 28), dtype=np.uint8))
    for index in range(3):
        Image.fromarray(np.full((9, 9), 80 * index, np.uint8)).save(tmp_path / f"{index}.png")
    npz_reads = _count_calls(monkeypatch, files, "load_npz")
    folder_scans = _count_calls(monkeypatch, files, "list_images")

    def batches(name, start, batch_size=8):
        return np.stack([b.numpy() for b in jd.load_dataset(name, batch_size=batch_size, start=start).take(4)])

    first = [batches(f"npz:{path}", None), batches(f"npz:{path}", 2)]
    batches(f"npz:{path}", None, batch_size=4)
    assert len(npz_reads) == 1
    jd.load_dataset(f"npz:{path}", batch_size=8, image_size=16)  # another size: other arrays
    assert len(npz_reads) == 2
    with pipeline.loading_once():
        again = [batches(f"npz:{path}", None), batches(f"npz:{path}", 2)]
        batches(f"folder:{tmp_path}", None, batch_size=3), batches(f"folder:{tmp_path}", 1, batch_size=3)
        assert len(folder_scans) == 1
        with pytest.raises(ValueError, match="has 3 images, fewer than batch_size=64"):
            jd.load_dataset(f"folder:{tmp_path}")  # a scanned folder is still checked against the batch
    assert len(npz_reads) == 2
    for got, want in zip(again, first):
        np.testing.assert_array_equal(got, want)
    batches(f"folder:{tmp_path}", None, batch_size=3)  # outside, a folder is scanned again
    assert len(folder_scans) == 2
    np.savez(path, x_train=np.full((48, 28, 28), 255, np.uint8))  # changed: read again
    changed = batches(f"npz:{path}", None)
    assert len(npz_reads) == 3
    np.testing.assert_array_equal(changed, np.ones_like(changed))


def test_an_idx_source_built_once_per_epoch_is_read_once(tmp_path, monkeypatch):
    """A run resumed once per epoch builds its datasets again and again: one read of the IDX files (the
    arrays TensorFlow keeps are the same), and the other split and a touched file are read anew."""
    from jointvae_tf.data import files

    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, num in (("train", 64), ("t10k", 16)):
        images = np.random.RandomState(num).randint(0, 256, (num, 28, 28), dtype=np.uint8)
        header = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
    reads = _count_calls(monkeypatch, files, "load_idx")
    for _ in range(3):
        next(iter(jd.load_dataset(f"idx:{folder}", batch_size=8)))
        next(iter(jd.load_dataset(f"idx:{folder}", split="test", batch_size=8)))
    assert len(reads) == 2
    os.utime(folder / "train-images-idx3-ubyte", ns=(1, 1))
    next(iter(jd.load_dataset(f"idx:{folder}", batch_size=8)))
    assert len(reads) == 3


def test_folder(tmp_path):
    for i in range(4):
        Image.fromarray(np.full((50, 70, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.jpg")
    images = next(iter(jd.load_dataset(f"folder:{tmp_path}", batch_size=4, shuffle=False)))
    assert images.shape == (4, 64, 64, 3)
    np.testing.assert_allclose(images.numpy()[:, 5, 5, 0], np.arange(4) * 60 / 255.0, atol=2 / 255.0)
    gray = next(iter(jd.load_dataset(f"folder:{tmp_path}", batch_size=2, channels=1)))
    assert gray.shape == (2, 64, 64, 1)
    with pytest.raises(ValueError, match="image folders have no labels"):
        jd.load_dataset(f"folder:{tmp_path}", with_labels=True)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        jd.load_dataset(f"folder:{tmp_path / 'absent'}")


def test_folder_channels_convert_grayscale_to_rgb(tmp_path):
    for i in range(4):
        Image.fromarray(np.full((40, 40), 50 * i, np.uint8)).save(tmp_path / f"{i}.png")
    gray = next(iter(jd.load_dataset(f"folder:{tmp_path}", batch_size=4, shuffle=False))).numpy()
    rgb = next(iter(jd.load_dataset(f"folder:{tmp_path}", batch_size=4, shuffle=False, channels=3))).numpy()
    assert gray.shape == (4, 64, 64, 1) and rgb.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(rgb, np.repeat(gray, 3, axis=-1))


def test_folder_mixed_channels_point_at_the_flag(tmp_path):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "rgb.jpg")
    with pytest.raises(ValueError, match=re.escape("pass --channels=1 or --channels=3 (channels=1/3 from Python)")):
        jd.load_dataset(f"folder:{tmp_path}", batch_size=2)
    assert next(iter(jd.load_dataset(f"folder:{tmp_path}", batch_size=2, channels=1))).shape == (2, 64, 64, 1)


def test_npz_and_idx_convert_channels(tmp_path):
    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=rgb)
    gray = next(iter(jd.load_dataset(f"npz:{tmp_path / 'rgb.npz'}", batch_size=8, shuffle=False, channels=1)))
    luma = np.round(rgb @ np.array([0.2989, 0.5870, 0.1140]))[..., None] / 255.0
    assert gray.shape == (8, 32, 32, 1)
    np.testing.assert_allclose(gray.numpy(), luma, atol=1.01 / 255.0)
    digits = rng.randint(0, 256, (8, 28, 28), dtype=np.uint8)
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 8, 3]) + np.array(digits.shape, ">u4").tobytes() + digits.tobytes())
    own = next(iter(jd.load_dataset(f"idx:{idx}", batch_size=8, shuffle=False))).numpy()
    three = next(iter(jd.load_dataset(f"idx:{idx}", batch_size=8, shuffle=False, channels=3))).numpy()
    assert own.shape == (8, 32, 32, 1) and three.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(three, np.repeat(own, 3, axis=-1))


def test_dsprites_channels():
    assert next(iter(jd.load_dataset("dsprites", batch_size=2, channels=1))).shape == (2, 64, 64, 1)
    with pytest.raises(ValueError, match=re.escape("dsprites images are grayscale: drop --channels or pass")):
        jd.load_dataset("dsprites", channels=3)


@pytest.mark.parametrize("channels", [0, 2, 4, True, 3.0, "3"])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match=re.escape("channels must be 1 (grayscale), 3 (RGB) or None")):
        jd.load_dataset("dsprites", channels=channels)


def test_paths_of_the_wrong_kind(tmp_path):
    archive = tmp_path / "images.npz"
    np.savez(archive, images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=re.escape(f"{archive} is a file, not a folder of images")):
        jd.load_dataset(f"folder:{archive}")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path} is a folder, not an .npz archive")):
        jd.load_dataset(f"npz:{tmp_path}")


def test_dsprites_archive_in_manual_dir_that_is_not_an_npz(tmp_path):
    archive = tmp_path / jd.dsprites.ARCHIVE_FILENAME
    archive.write_text("<html>Moved Permanently</html>")
    message = f"{archive} is not an .npz archive (a zip of .npy arrays): it starts with b'<html>Mo'"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.load_dataset("dsprites", manual_dir=tmp_path)


def test_tfds_data_dir_that_cannot_be_written(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    manual_dir = tmp_path / "downloads"
    manual_dir.mkdir()
    for name in jd.tfds_required_files("mnist"):
        (manual_dir / name).write_bytes(b"")
    data_dir = tmp_path / "not_a_folder"
    data_dir.write_text("a file where data_dir should be")
    message = f"cannot build TFDS dataset 'mnist' in data_dir={data_dir}: Not a directory"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.load_dataset("mnist", data_dir=data_dir, manual_dir=manual_dir)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        jd.load_dataset("dsprites", batch_size=0)
