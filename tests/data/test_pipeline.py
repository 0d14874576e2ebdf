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


def _stream(start, take, shuffle=True, seed=5, num=23, batch=4):
    return np.stack([b.numpy() for b in pipeline.batch_indices(num, batch, shuffle, seed, start).take(take)])


def test_the_training_stream_is_a_function_of_seed_and_position():
    # 23 examples in batches of 4: 5 batches an epoch (3 examples left out of each).
    whole = _stream(0, 17)
    epochs = whole[:15].reshape(3, 20)
    for epoch in epochs:  # each epoch: 20 distinct examples of 23
        assert len(np.unique(epoch)) == 20 and epoch.min() >= 0 and epoch.max() < 23
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    # A run resumed at any step reads what the uninterrupted one does, across epoch boundaries.
    for start in (1, 4, 5, 7, 12):
        np.testing.assert_array_equal(_stream(start, 17 - start), whole[start:])
    np.testing.assert_array_equal(_stream(0, 17), whole)  # and twice the same
    assert not np.array_equal(_stream(0, 17, seed=6), whole)
    np.testing.assert_array_equal(_stream(7, 3, shuffle=False), np.arange(20).reshape(5, 4)[[2, 3, 4]])
    # A late position is reached without reading the batches before it.
    late = pipeline.batch_indices(737_280, 64, True, 0, 40_000 * 1000)
    assert next(iter(late)).numpy().shape == (64,)


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True])
def test_a_bad_start_is_named(bad):
    with pytest.raises(ValueError, match=f"start must be None .one epoch. or a batch position >= 0, got {bad!r}"):
        pipeline.batch_indices(23, 4, True, 0, bad)


def test_array_dataset_streams_from_a_start():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    labels = np.arange(100)

    def labels_from(start, take):
        dataset = pipeline.array_dataset(images, labels, 10, True, 2, True, "toy", start=start)
        return np.stack([batch_labels.numpy() for _, batch_labels in dataset.take(take)])

    whole = labels_from(0, 25)
    np.testing.assert_array_equal(labels_from(13, 12), whole[13:])
    np.testing.assert_array_equal(np.sort(whole[10:20].ravel()), labels)  # the second epoch: every example once


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
