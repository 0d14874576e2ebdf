"""Tests for jointvae_tf/metrics/beta_vae.py."""

import numpy as np
import pytest

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import beta_vae
from metrics_test_data import IdentityData

DSPRITES_FACTOR_SIZES = [3, 6, 40, 32, 32]




def _score(representation_fn, factor_sizes=(10,) * 10, seed=0, **options):
    options = {"batch_size": 16, "num_train": 1000, "num_eval": 500, **options}
    return jm.beta_vae_score(
        IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed), **options
    )


def test_identity_scores_high_with_defaults():
    scores = jm.beta_vae_score(IdentityData([10] * 10), lambda x: x, np.random.RandomState(0))
    assert set(scores) == {"train_accuracy", "eval_accuracy"}
    assert all(isinstance(value, float) for value in scores.values())
    assert scores["train_accuracy"] >= 0.9
    assert scores["eval_accuracy"] >= 0.9


def test_identity_on_dsprites_factors_scores_high():
    scores = _score(lambda x: x, DSPRITES_FACTOR_SIZES)
    assert scores["eval_accuracy"] >= 0.9


def test_zeros_score_chance():
    scores = _score(np.zeros_like, num_train=3000, num_eval=2000)
    assert scores["train_accuracy"] <= 0.2
    assert scores["eval_accuracy"] <= 0.2


def test_noise_scores_low():
    noise = np.random.RandomState(1)
    scores = _score(lambda x: noise.normal(size=x.shape), num_train=3000, num_eval=2000)
    assert scores["train_accuracy"] <= 0.2
    assert scores["eval_accuracy"] <= 0.2


def test_same_model_and_seed_give_same_numbers():
    weights = np.random.RandomState(7).normal(size=(10, 6))

    def model(x):
        return np.tanh(x @ weights / 10.0)

    first, again = _score(model, seed=3), _score(model, seed=3)
    assert first == again
    assert _score(model, seed=4) != first


def _objective_gradient(features, labels, weights, bias):
    """Gradient of sum cross-entropy + ||weights||^2 / 2 (scikit-learn, C=1)."""
    logits = features @ weights + bias
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    residual = probs - np.eye(weights.shape[1])[labels]
    return features.T @ residual + weights, residual.sum(axis=0)


def test_logistic_regression_reaches_the_optimum():
    random_state = np.random.RandomState(0)
    labels = random_state.randint(4, size=400)
    features = random_state.normal(size=(400, 3)) + 3.0 * np.eye(4, 3)[labels]
    weights, bias = beta_vae._fit_logistic_regression(features, labels, 4)
    assert weights.shape == (3, 4) and bias.shape == (4,)
    grad_weights, grad_bias = _objective_gradient(features, labels, weights, bias)
    np.testing.assert_allclose(grad_weights, 0.0, atol=1e-3)
    np.testing.assert_allclose(grad_bias, 0.0, atol=1e-3)
    accuracy = np.mean(np.argmax(features @ weights + bias, axis=1) == labels)
    assert accuracy > 0.8


def test_logistic_regression_predicts_majority_without_signal():
    labels = np.array([2, 2, 2, 0, 1])
    weights, bias = beta_vae._fit_logistic_regression(np.zeros((5, 2)), labels, 3)
    np.testing.assert_array_equal(weights, 0.0)
    assert np.argmax(bias) == 2


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"num_train": -5}, "num_train must be an integer >= 1, got -5"),
        ({"num_eval": None}, "num_eval must be an integer >= 1, got None"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _score(lambda x: x, **options)


def test_rejects_bad_representation_shape():
    with pytest.raises(ValueError, match=r"got shape \(16, 10, 1\)"):
        _score(lambda x: x[..., None])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
