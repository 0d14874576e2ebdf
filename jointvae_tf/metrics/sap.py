"""The Separated Attribute Predictability (SAP) score of Kumar et al.

Based on "Variational Inference of Disentangled Latent Concepts from Unlabeled Observations"
(Kumar et al., ICLR 2018, https://openreview.net/forum?id=H1kG7GZAW), Section 3, computed as
disentanglement_lib's `compute_sap` for discrete factors (its published configuration:
10,000 training and 5,000 test points, sampled in that order from `random_state`, 16 at a
time): each latent alone predicts each factor, scored by test accuracy, and the score is the
mean over factors of the gap between the two latents that predict it best. One difference:
the single-latent classifier cuts the latent into at most `num_bins` quantile bins of the
training points (between every two distinct values when it has at most `num_bins`: one-hot
and other discrete codes exactly) and predicts each bin's most frequent training class
(`bin_majority_accuracy`), where disentanglement_lib uses scikit-learn's
LinearSVC(C=0.01, class_weight="balanced"), and scikit-learn is not a dependency here. The
bins need not be ordered by class, so a latent that encodes a factor non-monotonically still
predicts it. The measured difference is in README.md ("DCI and SAP").
"""

from __future__ import annotations

import numpy as np

from jointvae_tf.metrics import tree, utils


def bin_majority_accuracy(
    code_train: np.ndarray, factor_train: np.ndarray, code_test: np.ndarray, factor_test: np.ndarray,
    num_bins: int = tree.DEFAULT_MAX_BINS,
) -> float:
    """Test accuracy of predicting a factor [n] from one code [n] by the majority training class of its bin.

    Bins: `tree.bin_edges` of the training code (at most `num_bins`). A test point in a bin no
    training point fell in cannot occur (the bins cover the real line); ties between classes go to
    the smallest class.
    """
    edges = tree.bin_edges(np.asarray(code_train, np.float64)[:, None], num_bins)
    classes, labels = np.unique(np.asarray(factor_train), return_inverse=True)
    bins_train = tree.apply_bins(np.asarray(code_train)[:, None], edges)[:, 0]
    counts = np.zeros((len(edges[0]) + 1, len(classes)), np.int64)
    np.add.at(counts, (bins_train, labels), 1)
    prediction = classes[np.argmax(counts, axis=1)]
    bins_test = tree.apply_bins(np.asarray(code_test)[:, None], edges)[:, 0]
    return float(np.mean(prediction[bins_test] == np.asarray(factor_test)))


def score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    num_bins: int = tree.DEFAULT_MAX_BINS,
) -> np.ndarray:
    """Test accuracy [num_codes, num_factors] of predicting factor j from code i alone (`bin_majority_accuracy`)."""
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            scores[i, j] = bin_majority_accuracy(codes_train[:, i], factors_train[:, j], codes_test[:, i],
                                                 factors_test[:, j], num_bins)
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
    num_bins: int = tree.DEFAULT_MAX_BINS,
) -> dict[str, float]:
    """Computes the SAP score.

    Args:
      ground_truth_data: The data set, e.g. the dSprites sampler.
      representation_fn: Maps observations [n, ...] to codes [n, num_latents], num_latents >= 2.
      random_state: Source of all randomness (the training points are drawn first).
      num_train: Points each classifier is fitted on.
      num_test: Points it is scored on.
      batch_size: Points sampled and encoded per iteration.
      num_bins: Most bins per latent of the single-latent classifiers (`bin_majority_accuracy`).

    Returns:
      "sap_score", in [0, 1].
    """
    num_bins = utils.check_int_option("num_bins", num_bins, 2)
    codes_train, factors_train, codes_test, factors_test = utils.sample_train_test(
        ground_truth_data, representation_fn, random_state, num_train, num_test, batch_size, "SAP")
    scores = score_matrix(codes_train, factors_train, codes_test, factors_test, num_bins)
    return {"sap_score": mean_gap_of_top_two(scores)}
