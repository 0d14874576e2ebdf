"""The disentanglement metric of the BetaVAE paper.

Based on "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework" (Higgins et al., 2017, https://openreview.net/forum?id=Sy2fzU9gl), computed as
disentanglement_lib's `compute_beta_vae_sklearn`, drawing from `random_state` in the same
order. Its classifier, scikit-learn's default `LogisticRegression` (multinomial, L2 with
C=1, intercept not penalised, raw features), is reimplemented with numpy and scipy's
L-BFGS so the metric needs no scikit-learn.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from jointvae_tf.metrics import utils

# Inverse L2 strength of the logistic regression: scikit-learn's default C.
_INVERSE_REGULARIZATION = 1.0


def beta_vae_score(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
) -> dict[str, float]:
    """Computes the BetaVAE score.

    Each point pairs two batches of `batch_size` factor vectors that share the value of
    one factor, chosen uniformly; its feature is the mean absolute difference of the
    pairs' codes and its label the shared factor. A logistic regression fit on
    `num_train` points predicts the label, and is scored on those and on `num_eval`
    fresh points.

    Args:
      ground_truth_data: The data set, e.g. the dSprites sampler.
      representation_fn: Maps observations [n, ...] to codes [n, num_latents].
      random_state: Source of all randomness.
      batch_size: Pairs per point, also the largest `representation_fn` batch.
      num_train: Points used to fit the classifier.
      num_eval: Points used to evaluate it.

    Returns:
      "train_accuracy" and "eval_accuracy".
    """
    utils.check_random_state(random_state)
    batch_size = utils.check_int_option("batch_size", batch_size, 1)
    num_train = utils.check_int_option("num_train", num_train, 1)
    num_eval = utils.check_int_option("num_eval", num_eval, 1)

    def points(num_points):
        return _generate_points(
            ground_truth_data, representation_fn, random_state, batch_size, num_points
        )

    train_features, train_labels = points(num_train)
    weights, bias = _fit_logistic_regression(
        train_features, train_labels, utils.num_factors(ground_truth_data)
    )
    eval_features, eval_labels = points(num_eval)

    def accuracy(features, labels):
        return float(np.mean(np.argmax(features @ weights + bias, axis=1) == labels))

    return {
        "train_accuracy": accuracy(train_features, train_labels),
        "eval_accuracy": accuracy(eval_features, eval_labels),
    }


def _generate_points(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int,
    num_points: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws `num_points` labelled features.

    Returns:
      features: [num_points, num_latents], each the mean absolute code difference over
        `batch_size` pairs sharing one factor.
      labels: int [num_points], the index of the shared factor.
    """
    num_factors = utils.num_factors(ground_truth_data)
    labels = np.zeros(num_points, dtype=np.int64)

    def draws():
        for i in range(num_points):
            labels[i] = random_state.randint(num_factors)
            factors1 = utils.sample_factors(ground_truth_data, batch_size, random_state)
            factors2 = utils.sample_factors(ground_truth_data, batch_size, random_state)
            factors2[:, labels[i]] = factors1[:, labels[i]]
            yield factors1
            yield factors2

    codes = utils.represent_factor_batches(
        ground_truth_data, representation_fn, draws(), random_state, batch_size
    ).reshape(num_points, 2, batch_size, -1)
    features = np.mean(np.abs(codes[:, 0] - codes[:, 1]), axis=1)
    return features, labels


def _fit_logistic_regression(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    inverse_regularization: float = _INVERSE_REGULARIZATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Fits a multinomial logistic regression by L-BFGS, deterministically (from zeros).

    Minimises the objective of scikit-learn's `LogisticRegression(C=c)`,
    sum_i cross_entropy_i + ||weights||^2 / (2 c), divided by num_points for
    conditioning (same minimiser).

    Args:
      features: [num_points, num_features].
      labels: int [num_points], in [0, num_classes).
      num_classes: Number of classes.
      inverse_regularization: scikit-learn's C.

    Returns:
      weights: [num_features, num_classes].
      bias: [num_classes].
    """
    num_points, num_features = features.shape
    one_hot = np.eye(num_classes)[labels]
    l2 = 1.0 / (inverse_regularization * num_points)

    def loss_and_grad(params):
        weights = params[:-num_classes].reshape(num_features, num_classes)
        logits = features @ weights + params[-num_classes:]
        log_probs = logits - special.logsumexp(logits, axis=1, keepdims=True)
        loss = -np.sum(one_hot * log_probs) / num_points + 0.5 * l2 * np.sum(weights**2)
        residual = (np.exp(log_probs) - one_hot) / num_points
        grad_weights = features.T @ residual + l2 * weights
        return loss, np.concatenate([grad_weights.ravel(), residual.sum(axis=0)])

    result = optimize.minimize(
        loss_and_grad,
        np.zeros((num_features + 1) * num_classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
    )
    return result.x[:-num_classes].reshape(num_features, num_classes), result.x[-num_classes:]
