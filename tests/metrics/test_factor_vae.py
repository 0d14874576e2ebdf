"""Tests for jointvae_tf/metrics/factor_vae.py."""

import numpy as np
import pytest

import jointvae_tf.metrics as jm
from metrics_test_data import IdentityData

DSPRITES_FACTOR_SIZES = [3, 6, 40, 32, 32]




def _score(representation_fn, factor_sizes=(10,) * 10, seed=0, **options):
    options = {
        "batch_size": 16,
        "num_train": 1000,
        "num_eval": 500,
        "num_variance_estimate": 1000,
        **options,
    }
    return jm.factor_vae_score(
        IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed), **options
    )


def test_identity_scores_high_with_defaults():
    scores = jm.factor_vae_score(IdentityData([10] * 10), lambda x: x, np.random.RandomState(0))
    assert set(scores) == {"train_accuracy", "eval_accuracy", "num_active_dims"}
    assert all(isinstance(value, float) for value in scores.values())
    assert scores["train_accuracy"] >= 0.9
    assert scores["eval_accuracy"] >= 0.9
    assert scores["num_active_dims"] == 10


def test_identity_on_dsprites_factors_is_perfect():
    scores = _score(lambda x: x, DSPRITES_FACTOR_SIZES)
    assert scores["train_accuracy"] == scores["eval_accuracy"] == 1.0


def test_permuted_noisy_rescaled_latents_score_perfectly():
    # A noisy encoder: the fixed factor's latent keeps some variance, small
    # only relative to its global variance. Without normalising by it the
    # small-scale latents would win every argmin.
    noise = np.random.RandomState(1)
    scale = np.array([1e3, 1e-1, 1.0, 30.0, 0.2])

    def representation_fn(x):
        return (x[:, ::-1] + 0.3 * noise.normal(size=x.shape)) * scale

    scores = _score(representation_fn, [10, 7, 5, 12, 9])
    assert scores["train_accuracy"] == scores["eval_accuracy"] == 1.0


def test_zeros_have_no_active_dims():
    scores = _score(np.zeros_like)
    assert scores == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}


def test_noise_scores_low():
    noise = np.random.RandomState(1)
    scores = _score(lambda x: noise.normal(size=x.shape), num_train=3000, num_eval=2000)
    assert scores["train_accuracy"] <= 0.2
    assert scores["eval_accuracy"] <= 0.2


def test_collapsed_latents_are_pruned():
    # Two latents collapse (std 0 and 0.01 < 0.05), one stays at std 0.06.
    noise = np.random.RandomState(1)

    def representation_fn(x):
        extra = noise.normal(size=(len(x), 3)) * [0.0, 0.01, 0.06]
        return np.concatenate([x, extra], axis=1)

    scores = _score(representation_fn, [4, 5])
    assert scores["num_active_dims"] == 3
    assert scores["train_accuracy"] == scores["eval_accuracy"] == 1.0
    scores = _score(representation_fn, [4, 5], prune_threshold=0.1)
    assert scores["num_active_dims"] == 2


def test_same_model_and_seed_give_same_numbers():
    weights = np.random.RandomState(7).normal(size=(10, 6))

    def model(x):
        return np.tanh(x @ weights / 10.0)

    first, again = _score(model, seed=3), _score(model, seed=3)
    assert first == again
    assert _score(model, seed=4) != first


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 1}, "batch_size must be an integer >= 2, got 1"),
        ({"num_train": 0}, "num_train must be an integer >= 1, got 0"),
        ({"num_eval": 2.5}, "num_eval must be an integer >= 1, got 2.5"),
        ({"num_variance_estimate": 1}, "num_variance_estimate must be an integer >= 2, got 1"),
        ({"prune_threshold": -1.0}, "prune_threshold must be >= 0, got -1.0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _score(lambda x: x, **options)


def test_rejects_bad_representation_shape():
    with pytest.raises(ValueError, match=r"got shape \(16,\)"):
        _score(lambda x: x[:, 0])


def test_rejects_integer_seed():
    with pytest.raises(TypeError, match="RandomState"):
        jm.factor_vae_score(IdentityData([2, 2]), lambda x: x, 0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
