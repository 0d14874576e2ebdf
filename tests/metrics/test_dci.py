"""Tests for jointvae_tf/metrics/dci.py and the tree behind it (jointvae_tf/metrics/tree.py)."""

import importlib

import numpy as np
import pytest
from metrics_test_data import IdentityData
from scipy import stats

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import tree

jdci = importlib.import_module("jointvae_tf.metrics.dci")  # the module (jm.dci is its function)

SIZES = [3, 6, 10, 8]


def _dci(representation_fn, factor_sizes=SIZES, seed=0, **options):
    options = {"num_train": 2000, "num_test": 1000, **options}
    return jm.dci(IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed), **options)


def _np_weighted_one_minus_entropy(matrix, axis):
    """sum_i w_i (1 - H(p_i) / log n) along `axis`, weights = each line's share of the total: by hand."""
    lines = matrix if axis == 1 else matrix.T
    n = lines.shape[1]
    result = 0.0
    for line in lines:
        p = (line + 1e-11) / (line + 1e-11).sum()
        result += (1 - (-(p * np.log(p)).sum() / np.log(n))) * line.sum() / matrix.sum()
    return result


def test_disentanglement_and_completeness_match_numpy():
    importance = np.random.RandomState(0).uniform(size=(6, 4)) ** 3
    assert jdci.disentanglement(importance) == pytest.approx(_np_weighted_one_minus_entropy(importance, 1))
    assert jdci.completeness(importance) == pytest.approx(_np_weighted_one_minus_entropy(importance, 0))
    np.testing.assert_allclose(jdci.disentanglement_per_code(importance),
                               1 - stats.entropy(importance.T, base=4), atol=1e-9)
    # One factor per code: both 1. One code for every factor: completeness 1, disentanglement 0.
    assert jdci.disentanglement(np.eye(4)) == pytest.approx(1.0)
    assert jdci.completeness(np.eye(4)) == pytest.approx(1.0)
    one_code = np.zeros((4, 4))
    one_code[0] = 1.0
    assert jdci.completeness(one_code) == pytest.approx(1.0) and jdci.disentanglement(one_code) == pytest.approx(0.0)
    # Uniform importance: both 0; no importance at all is weighted uniformly (disentanglement_lib's rule).
    assert jdci.disentanglement(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-9)
    assert jdci.completeness(np.zeros((5, 3))) == pytest.approx(0.0, abs=1e-9)


def test_gini_split_gains_match_a_direct_computation():
    rng = np.random.RandomState(1)
    bins, classes = rng.randint(5, size=(40, 3)), rng.randint(4, size=40)  # 40 points, 3 features, 4 classes
    counts = np.zeros((3, 5, 4), int)
    for f in range(3):
        np.add.at(counts[f], (bins[:, f], classes), 1)
    gains = tree.gini_split_gains(counts, min_samples_leaf=1)

    def n_gini(c):
        return c.sum() - (c**2).sum() / c.sum() if c.sum() else 0.0

    for f in range(3):
        for b in range(4):
            left, right = counts[f, :b + 1].sum(0), counts[f, b + 1:].sum(0)
            if left.sum() and right.sum():
                assert gains[f, b] == pytest.approx(n_gini(counts[f].sum(0)) - n_gini(left) - n_gini(right))
    assert np.all(np.isneginf(tree.gini_split_gains(counts, min_samples_leaf=10**6)))


def test_tree_fits_known_functions_and_credits_the_features_it_splits_on():
    rng = np.random.RandomState(2)
    digits = rng.randint(10, size=(2000, 3))
    x = digits * 0.1  # at most 64 distinct values: every threshold between two of them is a bin edge
    y = (digits[:, 1] > 3).astype(int) + 2 * (digits[:, 2] > 6)
    fitted = tree.fit_tree(x, y)
    assert fitted.accuracy(x, y) == 1.0
    fresh = rng.uniform(size=(500, 3))  # between the training values: the thresholds are their midpoints
    expected = (fresh[:, 1] > 0.35).astype(int) + 2 * (fresh[:, 2] > 0.65)
    assert fitted.accuracy(fresh, expected) == 1.0
    assert fitted.feature_importances[0] == 0.0 and fitted.feature_importances.sum() == pytest.approx(1.0)
    # A duplicated feature shares the importance equally; a constant target gives a single leaf.
    twin = tree.fit_tree(np.hstack([x[:, 1:2], x[:, 1:2]]), (digits[:, 1] > 3).astype(int) + (digits[:, 1] > 7))
    np.testing.assert_allclose(twin.feature_importances, [0.5, 0.5])
    single = tree.fit_tree(x, np.zeros(2000, int))
    assert len(single.feature) == 1 and np.all(single.feature_importances == 0) and single.accuracy(x, 0) == 1.0


def test_perfectly_disentangled_codes_score_one():
    scores = _dci(lambda x: x)
    assert set(scores) == {"disentanglement", "completeness", "informativeness_train", "informativeness_test"}
    for key, value in scores.items():
        assert isinstance(value, float) and value == pytest.approx(1.0), key


def test_order_sign_and_scale_of_codes_do_not_matter():
    scale = np.array([-3.0, 0.5, 100.0, 2.0])
    assert _dci(lambda x: x[:, ::-1] * scale + 1.0)["disentanglement"] == pytest.approx(1.0)


def test_entangled_codes_score_low_and_noise_lower():
    rotation = np.linalg.qr(np.random.RandomState(3).normal(size=(4, 4)))[0]
    mixed = _dci(lambda x: x @ rotation)
    assert mixed["disentanglement"] < 0.4 and mixed["completeness"] < 0.4
    noise = np.random.RandomState(4)
    random = _dci(lambda x: noise.normal(size=(len(x), 6)))
    assert random["disentanglement"] < 0.05 and random["completeness"] < 0.05
    assert random["informativeness_test"] < 0.3 < mixed["informativeness_test"]


def test_duplicated_codes_are_disentangled_but_not_complete():
    scores = _dci(lambda x: np.hstack([x, x]))
    assert scores["disentanglement"] == pytest.approx(1.0)
    assert scores["completeness"] == pytest.approx(1 - np.log(2) / np.log(8))


def test_same_seed_same_numbers():
    weights = np.random.RandomState(7).normal(size=(4, 5))
    assert _dci(lambda x: np.tanh(x @ weights / 5), seed=3) == _dci(lambda x: np.tanh(x @ weights / 5), seed=3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_train": 1}, "num_train must be an integer >= 2, got 1"),
        ({"num_test": 0}, "num_test must be an integer >= 1, got 0"),
        ({"max_depth": 0}, "max_depth must be an integer >= 1, got 0"),
        ({"min_samples_leaf": 0}, "min_samples_leaf must be an integer >= 1, got 0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _dci(lambda x: x, **options)


def test_rejects_single_latent():
    with pytest.raises(ValueError, match="at least 2 latents"):
        _dci(lambda x: x[:, :1])
