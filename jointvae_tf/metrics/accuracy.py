"""Unsupervised accuracy of a discrete latent against ground-truth labels.

A discrete latent numbers its categories in any order, so its argmax is scored after
mapping categories to labels: by the best one-to-one matching (Hungarian algorithm, as
the JointVAE paper reports for MNIST digits), or each category to its most frequent label.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from jointvae_tf.metrics import utils

_METHODS = ("hungarian", "majority")


def discrete_accuracy(categories, labels, method: str = "hungarian") -> float:
    """Accuracy of `categories` as a prediction of `labels`, up to renaming categories.

    Args:
      categories: Non-negative ints [num_points], e.g. the argmax of a discrete latent.
      labels: Non-negative ints [num_points], e.g. MNIST digits or dSprites shapes.
      method: "hungarian" maps categories to labels one-to-one so as to maximise the
        matches (`scipy.optimize.linear_sum_assignment`; categories left without a label
        when there are more categories than labels count as wrong). "majority" maps each
        category to its most frequent label, so several categories may share a label.

    Returns:
      The fraction of points whose mapped category equals their label, in [0, 1].

    Raises:
      ValueError: If the inputs are not 1-D non-negative int arrays of one non-zero
        length, or `method` is unknown.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    categories = _check_labels("categories", categories)
    labels = _check_labels("labels", labels)
    if categories.shape != labels.shape:
        raise ValueError(
            f"categories and labels must have the same length, got {categories.shape[0]} "
            f"and {labels.shape[0]}."
        )

    table = utils.contingency_table(categories, labels)  # [categories, labels]
    if method == "hungarian":
        rows, cols = optimize.linear_sum_assignment(table, maximize=True)
        correct = table[rows, cols].sum()
    else:
        correct = table.max(axis=1).sum()
    return float(correct / labels.shape[0])


def _check_labels(name: str, values) -> np.ndarray:
    """Returns `values` as a 1-D non-negative int array, or raises a ValueError."""
    values = np.asarray(values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {values.shape}.")
    if values.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {values.dtype}.")
    if values.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {values.min()}.")
    return values
