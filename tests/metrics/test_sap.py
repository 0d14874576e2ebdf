"""Tests for jointvae_tf/metrics/sap.py."""

import numpy as np
import pytest
from metrics_test_data import IdentityData

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import linear_svm, sap, utils

SIZES = [3, 6, 10, 8]


def _sap(representation_fn, factor_sizes=SIZES, seed=0, **options):
    options = {"num_train": 3000, "num_test": 2000, **options}
    return jm.sap_score(IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed),
                        **options)["sap_score"]


def test_mean_gap_of_top_two_matches_numpy():
    scores = np.random.RandomState(0).uniform(size=(5, 3))
    expected = np.mean([sorted(column)[-1] - sorted(column)[-2] for column in scores.T])
    assert sap.mean_gap_of_top_two(scores) == pytest.approx(expected)


def test_score_matrix_fits_one_linear_svm_per_latent_and_factor():
    rng = np.random.RandomState(1)
    factors_train, factors_test = rng.randint(4, size=(400, 2)), rng.randint(4, size=(200, 2))
    codes_train = np.hstack([factors_train + rng.normal(0, 0.3, (400, 2)), rng.normal(size=(400, 1))])
    codes_test = np.hstack([factors_test + rng.normal(0, 0.3, (200, 2)), rng.normal(size=(200, 1))])
    scores = sap.score_matrix(codes_train, factors_train, codes_test, factors_test)
    expected = [[linear_svm.accuracy(codes_train[:, i], factors_train[:, j], codes_test[:, i], factors_test[:, j])
                 for j in range(2)] for i in range(3)]
    np.testing.assert_array_equal(scores, expected)
    assert scores[0, 0] == scores[:, 0].max() and scores[1, 1] == scores[:, 1].max()


def test_identity_of_binary_factors_scores_the_gap_to_chance():
    # Each binary factor: its own latent separates it exactly, the others predict it at chance, 1/2.
    assert _sap(lambda x: x, factor_sizes=[2, 2, 2]) == pytest.approx(0.5, abs=0.03)


def test_linear_classifier_on_many_valued_factors():
    # One heavily regularised linear SVM per class (one-vs-rest) on the factor's own latent: the 3 values
    # are separated exactly, the middle ones of a 10-valued factor are not (disentanglement_lib's SAP reads
    # low on such factors), and the gap is still to the other latents.
    codes_train, factors_train, codes_test, factors_test = utils.sample_train_test(
        IdentityData(SIZES), lambda x: x, np.random.RandomState(0), 3000, 2000, 16, "SAP")
    scores = sap.score_matrix(codes_train, factors_train, codes_test, factors_test)
    assert scores[0, 0] == 1.0 and 0.2 < scores[2, 2] < 0.5
    np.testing.assert_array_equal(np.argmax(scores, axis=0), np.arange(len(SIZES)))


def test_noise_and_duplicates_score_about_zero():
    noise = np.random.RandomState(2)
    assert _sap(lambda x: noise.normal(size=(len(x), 6))) < 0.05
    assert _sap(lambda x: np.hstack([x, x])) == pytest.approx(0.0)


def test_rejects_a_factor_with_one_value():
    with pytest.raises(ValueError, match="SAP: factor 1 takes the single value 0 in all 3000 training points"):
        _sap(lambda x: x, factor_sizes=[3, 1, 4])


def test_returns_a_float_under_its_name():
    scores = jm.sap_score(IdentityData(SIZES), lambda x: x, np.random.RandomState(0), num_train=500, num_test=200)
    assert set(scores) == {"sap_score"} and isinstance(scores["sap_score"], float)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_train": 1}, "num_train must be an integer >= 2, got 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _sap(lambda x: x, **options)


def test_rejects_single_latent():
    with pytest.raises(ValueError, match="at least 2 latents"):
        _sap(lambda x: x[:, :1])
