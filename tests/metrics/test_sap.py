"""Tests for jointvae_tf/metrics/sap.py."""

import numpy as np
import pytest
from metrics_test_data import IdentityData

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import sap

SIZES = [3, 6, 10, 8]


def _sap(representation_fn, factor_sizes=SIZES, seed=0, **options):
    options = {"num_train": 3000, "num_test": 2000, **options}
    return jm.sap_score(IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed),
                        **options)["sap_score"]


def test_mean_gap_of_top_two_matches_numpy():
    scores = np.random.RandomState(0).uniform(size=(5, 3))
    expected = np.mean([sorted(column)[-1] - sorted(column)[-2] for column in scores.T])
    assert sap.mean_gap_of_top_two(scores) == pytest.approx(expected)


def test_bin_majority_accuracy():
    rng = np.random.RandomState(1)
    factor = rng.randint(5, size=1000)
    # A code that is a scrambled (non-monotonic) function of the factor still predicts it exactly.
    code = np.array([3.0, -1.0, 7.0, 0.5, 2.0])[factor]
    assert sap.bin_majority_accuracy(code, factor, code, factor) == 1.0
    # An unrelated code predicts the most frequent class: chance.
    other = rng.randint(5, size=1000)
    majority = np.mean(other == np.bincount(factor).argmax())
    assert sap.bin_majority_accuracy(np.zeros(1000), factor, np.zeros(1000), other) == pytest.approx(majority)


def test_identity_scores_the_gap_to_chance():
    # Each factor: its own latent predicts it exactly, the best other latent at most the majority-class rate ~1/K.
    score = _sap(lambda x: x)
    assert score == pytest.approx(np.mean([1 - 1 / k for k in SIZES]), abs=0.03)
    assert score > 0.75


def test_noise_and_duplicates_score_about_zero():
    noise = np.random.RandomState(2)
    assert _sap(lambda x: noise.normal(size=(len(x), 6))) < 0.05
    assert _sap(lambda x: np.hstack([x, x])) == pytest.approx(0.0)


def test_returns_a_float_under_its_name():
    scores = jm.sap_score(IdentityData(SIZES), lambda x: x, np.random.RandomState(0), num_train=500, num_test=200)
    assert set(scores) == {"sap_score"} and isinstance(scores["sap_score"], float)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_train": 1}, "num_train must be an integer >= 2, got 1"),
        ({"num_bins": 1}, "num_bins must be an integer >= 2, got 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _sap(lambda x: x, **options)


def test_rejects_single_latent():
    with pytest.raises(ValueError, match="at least 2 latents"):
        _sap(lambda x: x[:, :1])
