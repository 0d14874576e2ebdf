"""The shared pipeline: resizing as the reference does, batching without remainders, seeded shuffling."""


import numpy as np
import pytest
from shared_data import shared_data
import tensorflow as tf
from PIL import Image

import jointvae_tf.data as jd
from jointvae_tf.data import pipeline



def test_mnist_resize_matches_the_references_pil_bilinear():
    digits = jd.read_idx(shared_data("mnist", "t10k-images-idx3-ubyte.gz"))[:200]
    ours = pipeline.resize_images(digits[..., None], 32).numpy()[..., 0]
    # The reference: torchvision Resize(32) on PIL images, i.e. PIL bilinear to uint8.
    pil = np.stack([np.asarray(Image.fromarray(d).resize((32, 32), Image.BILINEAR)) for d in digits]).astype(np.float32)
    assert ours.shape == (200, 32, 32) and np.all(ours == np.round(ours))
    assert np.abs(ours - pil).max() <= 1.0  # rounding of the last grey level only
    assert np.mean(ours == pil) > 0.95


def test_resize_centre_crops_to_a_square():
    # A 60x100 image whose central 60x60 square is white and the rest black.
    image = np.zeros((1, 60, 100, 1), np.uint8)
    image[:, :, 20:80] = 255
    out = pipeline.resize_images(image, 30).numpy()
    assert out.shape == (1, 30, 30, 1)
    np.testing.assert_array_equal(out, np.full_like(out, 255.0))
    unchanged = pipeline.resize_images(np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64, 1) % 256, 64)
    assert unchanged.dtype == tf.float32 and unchanged.shape == (1, 64, 64, 1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "64", True, None])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pipeline.check_batch_size(bad)


def test_too_few_examples_is_an_error():
    with pytest.raises(ValueError, match="my data has 10 images, fewer than batch_size=64"):
        pipeline.check_enough_examples(10, 64, "my data")
    pipeline.check_enough_examples(64, 64, "my data")


def test_array_dataset_batches_without_remainder_and_shuffles_by_seed():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1).repeat(4, axis=1).repeat(4, axis=2)
    labels = np.arange(100)
    ordered = pipeline.array_dataset(images, labels, 30, False, 0, True, "toy")
    assert ordered.cardinality().numpy() == 3
    batches = list(ordered)
    assert [b[0].shape for b in batches] == [(30, 4, 4, 1)] * 3
    np.testing.assert_array_equal(batches[1][1], np.arange(30, 60))
    np.testing.assert_allclose(batches[1][0][:, 0, 0, 0], np.arange(30, 60) / 255.0)

    def epoch(seed):
        dataset = pipeline.array_dataset(images, labels, 10, True, seed, True, "toy")
        return np.concatenate([batch_labels.numpy() for _, batch_labels in dataset])

    first = epoch(5)
    np.testing.assert_array_equal(first, epoch(5))
    assert not np.array_equal(first, epoch(6)) and not np.array_equal(first, labels)
    np.testing.assert_array_equal(np.sort(first), labels)  # a permutation: every example once
    # Each epoch of one dataset is reshuffled.
    dataset = pipeline.array_dataset(images, labels, 10, True, 5, True, "toy")
    one, two = ([batch_labels.numpy() for _, batch_labels in dataset] for _ in range(2))
    assert not np.array_equal(one, two)


def test_array_dataset_errors():
    images = np.zeros((5, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match="toy has 5 images, fewer than batch_size=8"):
        pipeline.array_dataset(images, None, 8, True, 0, False, "toy")
    with pytest.raises(ValueError, match="toy has no labels"):
        pipeline.array_dataset(images, None, 2, True, 0, True, "toy")


def test_resize_array_chunks_like_the_tensor_path():
    digits = jd.read_idx(shared_data("mnist", "t10k-images-idx3-ubyte.gz"))[:50, :, :, None]
    chunked = pipeline.resize_array(digits, 32, chunk=7)
    assert chunked.dtype == np.uint8 and chunked.shape == (50, 32, 32, 1)
    np.testing.assert_array_equal(chunked, pipeline.resize_images(digits, 32).numpy().astype(np.uint8))
