"""Local files: IDX (gzip and raw), npz archives, image folders, and their bad-input errors."""

import gzip
import io
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
from shared_data import shared_data
import tensorflow as tf
from PIL import Image

import jointvae_tf.data as jd



def _mnist(name=""):
    """A file of the shared MNIST folder (the test skips on a clone without ../shared/data)."""
    return shared_data("mnist", name) if name else shared_data("mnist")


def _test_images():
    return _mnist("t10k-images-idx3-ubyte.gz")


def _test_labels():
    return _mnist("t10k-labels-idx1-ubyte.gz")


def _idx_labels(count):
    """IDX labels (uint8 [count]) as bytes, as MNIST's labels file holds them."""
    return bytes([0, 0, 0x08, 1]) + np.array([count], ">u4").tobytes() + np.random.RandomState(0).randint(0, 10, count).astype("u1").tobytes()


def test_read_idx_gzip_and_raw_agree(tmp_path):
    labels = jd.read_idx(_test_labels())
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(open(_test_labels(), "rb").read()))
    np.testing.assert_array_equal(jd.read_idx(raw), labels)
    images = jd.read_idx(_test_images())
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and images.max() == 255


def test_read_idx_wider_types(tmp_path):
    path = tmp_path / "floats-idx2"
    values = np.arange(6, dtype=">f4").reshape(2, 3)
    path.write_bytes(bytes([0, 0, 0x0D, 2]) + np.array([2, 3], ">u4").tobytes() + values.tobytes())
    result = jd.read_idx(path)
    assert result.dtype == np.float32 and result.dtype.isnative
    np.testing.assert_array_equal(result, values)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-idx3-ubyte"):
        jd.read_idx(tmp_path / "nothing-idx3-ubyte")
    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(bytes([0x12, 0x34, 0x08, 0x03]) + bytes(100))
    with pytest.raises(ValueError, match=re.escape(f"{bad_magic} is not an IDX file: bad magic number 0x12340803")):
        jd.read_idx(bad_magic)
    bad_type = tmp_path / "bad-type"
    bad_type.write_bytes(bytes([0, 0, 0x07, 1]) + bytes(8))
    with pytest.raises(ValueError, match="bad magic number 0x00000701"):
        jd.read_idx(bad_type)
    raw = _idx_labels(10000)
    short = tmp_path / "short-labels-idx1-ubyte"
    short.write_bytes(raw[:5000])
    message = f"{short} is truncated: 5000 bytes, its header [10000] announces 10008"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.read_idx(short)
    cut_gzip = tmp_path / "cut-idx1-ubyte.gz"
    compressed = gzip.compress(raw)
    cut_gzip.write_bytes(compressed[:len(compressed) // 2])
    with pytest.raises(ValueError, match=re.escape(f"{cut_gzip}: truncated or corrupt gzip")):
        jd.read_idx(cut_gzip)


def test_load_idx_folder_splits_and_sibling_labels(tmp_path):
    images, labels = jd.load_idx(_mnist(), split="test")
    assert images.shape == (10000, 28, 28, 1) and labels.shape == (10000,) and labels.dtype == np.int64
    images_only = tmp_path / "t10k-images-idx3-ubyte.gz"
    shutil.copy(_test_images(), images_only)
    same, no_labels = jd.load_idx(images_only)
    np.testing.assert_array_equal(same, images)
    assert no_labels is None
    shutil.copy(_test_labels(), tmp_path / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(jd.load_idx(images_only)[1], labels)
    with pytest.raises(ValueError, match="splits train, test, not 'validation'"):
        jd.load_idx(_mnist(), split="validation")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        jd.load_idx(tmp_path, split="train")
    with pytest.raises(ValueError, match="split must stay 'train'"):
        jd.load_idx(images_only, split="test")


def test_load_idx_label_count_must_match(tmp_path):
    shutil.copy(_test_images(), tmp_path / "t10k-images-idx3-ubyte.gz")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array([3], ">u4").tobytes() + bytes(3))
    with pytest.raises(ValueError, match="has 3 labels for the 10000 images"):
        jd.load_idx(tmp_path, split="test")


def test_load_idx_wants_1_or_3_channels(tmp_path):
    path = tmp_path / "pairs-images-idx4-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + np.array([2, 4, 4, 2], ">u4").tobytes() + bytes(64))
    message = f"{path} must hold uint8 images [N, H, W] or [N, H, W, 1 or 3], got uint8 [2, 4, 4, 2]"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.load_idx(path)


def test_load_npz_layouts(tmp_path):
    keras_style = tmp_path / "mnist.npz"
    x = np.random.RandomState(0).randint(0, 256, size=(20, 28, 28), dtype=np.uint8)
    np.savez(keras_style, x_train=x, y_train=np.arange(20), x_test=x[:5], y_test=np.arange(5))
    images, labels = jd.load_npz(keras_style, split="test")
    assert images.shape == (5, 28, 28, 1) and labels.tolist() == list(range(5))
    binary = tmp_path / "binary.npz"
    np.savez(binary, imgs=(x > 127).astype(np.uint8))
    images, labels = jd.load_npz(binary)
    assert labels is None and set(np.unique(images)) == {0, 255}
    floats = tmp_path / "floats.npz"
    np.savez(floats, images=np.linspace(0, 1, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3))
    images, _ = jd.load_npz(floats)
    assert images.dtype == np.uint8 and images.shape == (2, 8, 8, 3) and images.max() == 255


def test_load_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        jd.load_npz(tmp_path / "missing.npz")
    no_images = tmp_path / "no_images.npz"
    np.savez(no_images, weights=np.zeros(3))
    message = "has no image array: expected x_train, imgs, images or x; it has ['weights']"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.load_npz(no_images)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        jd.load_npz(pickled)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, images=np.zeros((50, 28, 28), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated.npz"):
        jd.load_npz(truncated)
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, images=np.zeros((4, 28, 28), np.uint8), labels=np.zeros(3))
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        jd.load_npz(mismatched)
    out_of_range = tmp_path / "range.npz"
    np.savez(out_of_range, images=np.full((2, 8, 8), 300.0))
    with pytest.raises(ValueError, match=r"float values in \[300.0, 300.0\]"):
        jd.load_npz(out_of_range)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_load_npz_refuses_non_finite_floats(tmp_path, value):
    path = tmp_path / "floats.npz"
    images = np.full((3, 8, 8), 0.5, np.float32)
    images[0, 1, :3] = value
    images[2, 7, 7] = value
    np.savez(path, images=images)
    message = f"{path}:images has 4 non-finite values (NaN or inf) among its 192"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.load_npz(path)


@pytest.mark.parametrize(
    "name, contents, found",
    [
        ("text.npz", b"x_train: 1 2 3\n", "it starts with b'x_train:'"),
        ("random.npz", np.random.RandomState(0).bytes(4096), "it starts with b'"),
        ("empty.npz", b"", "the file is empty"),
        ("single.npz", None, "it is a single .npy array"),
    ],
)
def test_load_npz_names_a_file_that_is_not_an_npz_archive(tmp_path, name, contents, found):
    path = tmp_path / name
    if contents is None:
        with open(path, "wb") as f:
            np.save(f, np.zeros((2, 8, 8), np.uint8))
    else:
        path.write_bytes(contents)
    message = f"{path} is not an .npz archive (a zip of .npy arrays): {found}"
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        jd.load_npz(path)
    assert "\n" not in str(error.value) and "pickle" not in str(error.value)


def test_load_npz_names_zip_members_that_are_not_arrays(tmp_path):
    path = tmp_path / "notes.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images", "not an array")
    with pytest.raises(ValueError, match=re.escape(f"{path}:images is not an .npy array but a file of 12 bytes")):
        jd.load_npz(path)
    bad_header = tmp_path / "bad_header.npz"
    with zipfile.ZipFile(bad_header, "w") as archive:
        archive.writestr("images.npy", b"\x93NUMPY\x01\x00\x04\x00{}  ")
    with pytest.raises(ValueError, match=re.escape(f"{bad_header}:images is not a readable .npy array")):
        jd.load_npz(bad_header)


def test_npz_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "archives.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(f"{folder} is a folder, not an .npz archive")):
        jd.load_npz(folder)


def _write_images(folder, specs):
    """specs: list of (relative name, height, width, mode) -> writes PIL images with a gradient."""
    for name, height, width, mode in specs:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        gradient = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
        array = gradient if mode == "L" else np.stack([gradient, gradient[::-1, ::-1], np.full_like(gradient, 9)], -1)
        Image.fromarray(array, mode).save(path)


def test_image_folder_crops_resizes_and_recurses(tmp_path):
    names = ["a.png", "sub/b.jpg", "sub/deeper/c.JPEG"]
    _write_images(tmp_path, [(names[0], 120, 100, "RGB"), (names[1], 90, 150, "RGB"), (names[2], 64, 64, "RGB")])
    (tmp_path / "notes.txt").write_text("not an image")
    assert [os.path.relpath(f, tmp_path) for f in jd.list_images(tmp_path)] == names
    dataset = jd.image_folder_dataset(tmp_path, batch_size=3, shuffle=False)
    batch = next(iter(dataset)).numpy()
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    # Centre crop, then resize: a left-to-right gradient stays one, dark on the left.
    assert batch[0, 32, 2, 0] < 0.1 and batch[0, 32, 61, 0] > 0.9
    gray = next(iter(jd.image_folder_dataset(tmp_path, batch_size=3, shuffle=False, channels=1, image_size=32)))
    assert gray.shape == (3, 32, 32, 1)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        jd.image_folder_dataset(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=re.escape(f"no images (.png, .jpg, .jpeg) in folder {tmp_path}")):
        jd.image_folder_dataset(tmp_path)
    _write_images(tmp_path, [("a.png", 32, 32, "L")])
    with pytest.raises(ValueError, match="has 1 images, fewer than batch_size=4"):
        jd.image_folder_dataset(tmp_path, batch_size=4)
    with pytest.raises(ValueError, match="channels must be 1 .* got 2"):
        jd.image_folder_dataset(tmp_path, batch_size=1, channels=2)


def test_image_folder_mixed_channel_counts(tmp_path):
    _write_images(tmp_path, [("a.png", 40, 40, "L"), ("b.png", 40, 40, "RGB"), ("c.png", 40, 40, "L")])
    # Found when the dataset is built, not as a TensorFlow error in the middle of training.
    with pytest.raises(ValueError) as error:
        jd.image_folder_dataset(tmp_path, batch_size=3, shuffle=False)
    expected = (
        f"mixed channel counts in folder {tmp_path} (2 images with 1 channels, e.g. {tmp_path / 'a.png'}; "
        f"1 images with 3 channels, e.g. {tmp_path / 'b.png'}): "
        "pass --channels=1 or --channels=3 (channels=1/3 from Python) to convert every image"
    )
    assert str(error.value) == expected
    # Converting every image is the way out.
    for channels in (1, 3):
        assert next(iter(jd.image_folder_dataset(tmp_path, batch_size=3, channels=channels))).shape[-1] == channels


def test_image_folder_rejects_alpha_without_a_channel_choice(tmp_path):
    Image.fromarray(np.zeros((8, 8, 4), np.uint8), "RGBA").save(tmp_path / "alpha.png")
    message = f"{tmp_path / 'alpha.png'} has 4 channels (with alpha): pass --channels=1 or --channels=3"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.image_folder_dataset(tmp_path, batch_size=1)
    assert next(iter(jd.image_folder_dataset(tmp_path, batch_size=1, channels=3))).shape == (1, 64, 64, 3)


@pytest.mark.parametrize("name, kind, end", [("cut.png", "PNG", "IEND chunk"), ("cut.jpg", "JPEG", "EOI marker")])
def test_image_folder_names_a_truncated_file(tmp_path, name, kind, end):
    _write_images(tmp_path, [("a.png", 40, 40, "RGB"), (name, 40, 40, "RGB")])
    cut = tmp_path / name
    cut.write_bytes(cut.read_bytes()[:-20])  # the end of the file is lost
    message = f"{cut}: truncated {kind} image: it does not end with its {end}"
    with pytest.raises(ValueError, match=re.escape(message)):
        jd.image_folder_dataset(tmp_path, batch_size=2, channels=3)


def _gif_bytes():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "contents, found",
    [
        pytest.param(b"<html>404 Not Found</html>", "not a PNG or JPEG image: it starts with b'<html>40'", id="html"),
        pytest.param(b"", "not a PNG or JPEG image: the file is empty", id="empty"),
        pytest.param(_gif_bytes(), "not a PNG or JPEG image: it starts with b'GIF8", id="gif"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(4) + b"JUNK" + bytes(40),
                     "corrupt PNG: its first chunk is b'JUNK', not IHDR", id="png-no-ihdr"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", "the file ends inside its PNG header", id="png-cut-header"),
        pytest.param(b"\xff\xd8\xff\xda" + bytes(40) + b"\xff\xd9",
                     "corrupt JPEG: no frame header (SOF) before the image data", id="jpeg-no-sof"),
    ],
)
def test_image_folder_names_a_file_that_is_not_an_image(tmp_path, contents, found):
    _write_images(tmp_path, [("a.png", 40, 40, "L"), ("b.jpg", 40, 40, "L")])
    bad = tmp_path / "sub" / "bad.png"
    bad.parent.mkdir()
    bad.write_bytes(contents)
    with pytest.raises(ValueError, match=re.escape(f"{bad}: {found}")) as error:
        jd.image_folder_dataset(tmp_path, batch_size=2)
    assert "\n" not in str(error.value) and "more bad files" not in str(error.value)
    (tmp_path / "worse.jpg").write_bytes(b"neither")
    with pytest.raises(ValueError, match=re.escape(f"(and 1 more bad files in folder {tmp_path})")):
        jd.image_folder_dataset(tmp_path, batch_size=2, channels=1)


def test_image_folder_scans_urls_too(tmp_path):
    """Paths with a scheme go through tf.io.gfile, several at a time."""
    _write_images(tmp_path, [(f"{i}.png", 16, 16, "L") for i in range(5)])
    (tmp_path / "5.jpg").write_bytes(b"neither")
    with pytest.raises(ValueError, match=re.escape(f"file://{tmp_path / '5.jpg'}: not a PNG or JPEG image")):
        jd.image_folder_dataset(f"file://{tmp_path}", batch_size=2)
    (tmp_path / "5.jpg").unlink()
    assert next(iter(jd.image_folder_dataset(f"file://{tmp_path}", batch_size=5))).shape == (5, 64, 64, 1)


def test_folder_path_that_is_a_file(tmp_path):
    archive = tmp_path / "images.npz"
    np.savez(archive, images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=re.escape(f"{archive} is a file, not a folder of images")):
        jd.image_folder_dataset(archive)


def _encode(array, mode, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode, fmt, options",
    [
        ("L", "PNG", {}),
        ("L", "PNG", {"transparency": 0}),
        ("1", "PNG", {}),
        ("RGB", "PNG", {}),
        ("LA", "PNG", {}),
        ("RGBA", "PNG", {}),
        ("P", "PNG", {}),
        ("P", "PNG", {"transparency": 0}),
        ("L", "JPEG", {}),
        ("RGB", "JPEG", {"progressive": True}),
        ("RGB", "JPEG", {"exif": b"Exif\x00\x00" + bytes(60000)}),
        ("CMYK", "JPEG", {}),
    ],
)
def test_read_image_header_agrees_with_decode_image(tmp_path, mode, fmt, options):
    array = np.random.RandomState(0).randint(0, 256, (24, 40, 3), np.uint8)
    contents = _encode(array, mode, fmt, **options)
    path = tmp_path / "image"
    path.write_bytes(contents)
    header = jd.read_image_header(path)
    decoded = tf.io.decode_image(contents, channels=0, expand_animations=False)
    assert header.format == fmt.lower()
    assert (header.height, header.width, header.channels) == tuple(decoded.shape)


def test_image_folder_streams_from_a_start(tmp_path):
    # Eight images, each a flat grey level of its own: the level names the file.
    for i in range(8):
        Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(tmp_path / f"{i}.png")

    def levels_from(start, take):
        dataset = jd.image_folder_dataset(tmp_path, batch_size=3, seed=1, image_size=8, start=start)
        return np.stack([np.round(b.numpy()[:, 0, 0, 0] * 255 / 30) for b in dataset.take(take)])

    whole = levels_from(0, 7)
    np.testing.assert_array_equal(levels_from(3, 4), whole[3:])
    assert len(np.unique(whole[:2])) == 6  # an epoch: 2 batches of distinct images
