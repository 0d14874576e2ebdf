"""The Separated Attribute Predictability (SAP) score of Kumar et al.

Based on "Variational Inference of Disentangled Latent Concepts from Unlabeled Observations"
(Kumar et al., ICLR 2018, https://openreview.net/forum?id=H1kG7GZAW), Section 3, computed as
disentanglement_lib's `compute_sap` for discrete factors (its published configuration:
10,000 training and 5,000 test points, sampled in that order from `random_state`, 16 at a
time): each latent alone predicts each factor with scikit-learn's
LinearSVC(C=0.01, class_weight="balanced"), scored by test accuracy, and the score is the mean
over factors of the gap between the two latents that predict it best. scikit-learn is not a
dependency: `linear_svm` solves the same optimisation problems exactly in NumPy, where liblinear
stops at a tolerance, so a prediction rarely differs. On the reference dSprites model's codes
the two give the same SAP (README.md, "DCI and SAP").
"""

from __future__ import annotations

import numpy as np

from jointvae_tf.metrics import linear_svm, utils


def score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
) -> np.ndarray:
    """Test accuracy [num_codes, num_factors] of predicting factor j from code i alone (`linear_svm.accuracy`).

    Args:
      codes_train, codes_test: [n_train, num_codes], [n_test, num_codes].
      factors_train, factors_test: discrete factors [n_train, num_factors], [n_test, num_factors].

    Raises:
      ValueError: If a factor takes a single value in the training points (the linear SVM needs
        two classes; disentanglement_lib's LinearSVC fails there too).
    """
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for j in range(num_factors):
        values = np.unique(factors_train[:, j])
        if len(values) < 2:
            raise ValueError(f"SAP: factor {j} takes the single value {values[0].item()!r} in all {len(factors_train)} "
                             "training points; its linear SVM needs at least 2 classes")
        for i in range(num_codes):
            scores[i, j] = linear_svm.accuracy(codes_train[:, i], factors_train[:, j], codes_test[:, i],
                                               factors_test[:, j])
    return scores


def mean_gap_of_top_two(scores: np.ndarray) -> float:
    """Mean over columns of scores [num_codes >= 2, num_factors] of the largest minus the second largest entry."""
    ordered = np.sort(scores, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def sap_score(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    num_train: int = 10000,
    num_test: int = 5000,
    batch_size: int = 16,
) -> dict[str, float]:
    """Computes the SAP score.

    Args:
      ground_truth_data: The data set, e.g. the dSprites sampler.
      representation_fn: Maps observations [n, ...] to codes [n, num_latents], num_latents >= 2.
      random_state: Source of all randomness (the training points are drawn first).
      num_train: Points each classifier is fitted on.
      num_test: Points it is scored on.
      batch_size: Points sampled and encoded per iteration.

    Returns:
      "sap_score", in [0, 1].

    Raises:
      ValueError: For bad options, fewer than 2 latents, or a factor that takes one value in
        the training points.
    """
    codes_train, factors_train, codes_test, factors_test = utils.sample_train_test(
        ground_truth_data, representation_fn, random_state, num_train, num_test, batch_size, "SAP")
    scores = score_matrix(codes_train, factors_train, codes_test, factors_test)
    return {"sap_score": mean_gap_of_top_two(scores)}
