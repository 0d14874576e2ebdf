"""Tests for jointvae_tf/metrics/accuracy.py."""

import numpy as np
import pytest

import jointvae_tf.metrics as jm

METHODS = ("hungarian", "majority")


@pytest.mark.parametrize("method", METHODS)
def test_perfect_and_permuted_labellings_score_one(method):
    labels = np.random.RandomState(0).randint(10, size=1000)
    permutation = np.random.RandomState(1).permutation(10)
    assert jm.discrete_accuracy(labels, labels, method=method) == 1.0
    assert jm.discrete_accuracy(permutation[labels], labels, method=method) == 1.0
    # Category ids need not be contiguous.
    assert jm.discrete_accuracy(labels * 7 + 3, labels, method=method) == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_random_labelling_scores_about_chance(method):
    random_state = np.random.RandomState(0)
    labels = random_state.randint(10, size=10000)
    categories = random_state.randint(10, size=10000)
    accuracy = jm.discrete_accuracy(categories, labels, method=method)
    assert isinstance(accuracy, float)
    assert accuracy == pytest.approx(0.1, abs=0.03)


def test_hungarian_is_one_to_one_and_majority_is_not():
    categories = [0, 0, 1, 1, 2, 2]
    labels = [0, 0, 0, 0, 1, 1]
    # Hungarian: 0->0 and 2->1 match 4 points; category 1 has no label left.
    assert jm.discrete_accuracy(categories, labels) == pytest.approx(4 / 6)
    assert jm.discrete_accuracy(categories, labels, method="majority") == 1.0


def test_hungarian_finds_the_best_matching():
    # Greedy (category 0 takes label 0 first) would match 5 + 0 = 5 points;
    # the best matching 0->1, 1->0 matches 4 + 4 = 8.
    categories = [0] * 9 + [1] * 4
    labels = [0] * 5 + [1] * 4 + [0] * 4
    assert jm.discrete_accuracy(categories, labels) == pytest.approx(8 / 13)


def test_fewer_categories_than_labels():
    categories = [0, 0, 0, 1, 1, 1]
    labels = [0, 0, 1, 2, 2, 3]
    assert jm.discrete_accuracy(categories, labels) == pytest.approx(4 / 6)
    assert jm.discrete_accuracy(categories, labels, method="majority") == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    "categories, labels, message",
    [
        ([0, 1, 2], [0, 1], "same length, got 3 and 2"),
        ([[0, 1]], [0, 1], r"categories must be a non-empty 1-D array, got shape \(1, 2\)"),
        ([], [], r"categories must be a non-empty 1-D array, got shape \(0,\)"),
        ([0.0, 1.0], [0, 1], "categories must be integers, got dtype float64"),
        ([0, 1], [0, -1], "labels must be non-negative, got -1"),
    ],
)
def test_rejects_bad_inputs(categories, labels, message):
    with pytest.raises(ValueError, match=message):
        jm.discrete_accuracy(categories, labels)


def test_rejects_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        jm.discrete_accuracy([0], [0], method="greedy")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
