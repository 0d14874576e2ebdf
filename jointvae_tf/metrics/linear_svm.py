"""scikit-learn's LinearSVC(C, class_weight="balanced") on one feature, solved exactly in NumPy.

The single-latent classifier behind `sap_score`: disentanglement_lib's `compute_sap` fits
`sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")` to one latent (a 1-D feature) per
factor. LinearSVC is liblinear's L2-regularised squared-hinge SVM with the intercept as an extra
feature of value `intercept_scaling` = 1, regularised like the weight. Each binary problem is

    min_{w, b}  (w^2 + b^2) / 2 + sum_i c_i * max(0, 1 - y_i * (w * x_i + b))^2,   y_i in {-1, +1},

with per-sample costs c_i set by liblinear's multi-class handling (`binary_problems`), as
scikit-learn calls it (classes sorted, class weight k = C * n / (K * n_k)):

  * 2 classes: one problem, the second class is +1 (cost C * weight[1]), the first -1
    (C * weight[0]); a point is predicted as the second class iff w * x + b > 0.
  * K > 2 classes: one-vs-rest, K problems; problem k has class k at +1 with cost C * weight[k]
    and every other point at -1 with cost C, unweighted (liblinear's `train` passes the plain C
    for the negatives); the prediction is the class of the largest w_k * x + b_k, the first on ties.

liblinear solves these approximately (dual coordinate descent with `dual=True`, the scikit-learn
default before 1.5 and so disentanglement_lib's; a trust-region Newton method on the primal with
`dual="auto"`, since), stopping at a tolerance of 1e-4. With two unknowns per problem we solve the
primal to optimum instead (`solve_squared_hinge`): a generalised Newton method with an Armijo line
search, all problems at once. The data enter only through sums of 1, x and x^2 over the points
each hinge is active on, and for w != 0 those points form a half-line in x, so after one sort
every evaluation costs O(log n) per problem (prefix sums and a binary search).
tests/metrics/test_linear_svm.py compares the solutions with scipy.optimize and the predictions
with scikit-learn's (a fixture it made).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SAP_C = 0.01
"""disentanglement_lib's `C` for SAP's single-latent LinearSVC."""

_ARMIJO = 1e-4  # sufficient decrease of the line search
_ROUNDING = 4 * np.finfo(np.float64).eps  # objective changes below this fraction of it are rounding
_MAX_ITERATIONS = 100
_MAX_HALVINGS = 60
_GRADIENT_TOLERANCE = 1e-11  # relative to the gradient at the start (w = b = 0)


class LinearSVC1D(NamedTuple):
    """A fitted one-feature LinearSVC.

    classes: The sorted training labels [K].
    coef: Weights [m] of the m = 1 (K = 2) or K (one-vs-rest) decision functions.
    intercept: Their intercepts [m].
    """

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's class_weight="balanced" [num_classes]: n / (num_classes * count_k), of labels [n] in 0..K-1."""
    counts = np.bincount(labels, minlength=num_classes)
    return len(labels) / (num_classes * counts.astype(np.float64))


def binary_problems(labels: np.ndarray, num_classes: int, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """liblinear's binary problems for labels [n] in 0..K-1 (K >= 2) with balanced class weights.

    Problem j puts the points of class positive_class[j] at +1 and all the others at -1.

    Returns:
      positive_class: Class [m] at +1 in each problem: [1] for K = 2, else 0..K-1 (one-vs-rest).
      positive_cost: Cost [m] of each problem's +1 points.
      negative_cost: Cost [m] of its -1 points.
    """
    weights = c * balanced_class_weights(labels, num_classes)
    if num_classes == 2:
        return np.array([1]), weights[1:], weights[:1]
    return np.arange(num_classes), weights, np.full(num_classes, float(c))


def _prefix_moments(x: np.ndarray) -> np.ndarray:
    """Sums [n + 1, 3] of 1, x and x^2 over the first j entries of x [n], j = 0..n."""
    moments = np.zeros((len(x) + 1, 3))
    np.cumsum(np.stack([np.ones_like(x), x, x * x], axis=1), axis=0, out=moments[1:])
    return moments


class _Problems:
    """The m squared-hinge problems on one feature: objective, gradient and Hessian at (w, b) [m].

    Problem j has the points of class `positive_class[j]` at +1 and all others at -1. Where the
    hinge of a +1 point is active (w x + b < 1) and where that of a -1 point is (w x + b > -1)
    are index ranges [lo, hi) of the sorted feature. Their sums of 1, x, x^2 come from prefix
    sums over all points and over the points grouped by class (sorted by x within each class),
    where a class's points below sorted index p are found by a binary search on the key
    class * (n + 1) + index.
    """

    def __init__(self, x, labels, positive_class, positive_cost, negative_cost):
        order = np.argsort(x, kind="stable")
        self.x = x[order]
        sorted_labels = labels[order]
        grouped = np.argsort(sorted_labels, kind="stable")  # sorted indices, grouped by class
        self.size = len(x) + 1
        self.keys = sorted_labels[grouped] * self.size + grouped
        self.all_moments = _prefix_moments(self.x)
        self.grouped_moments = _prefix_moments(self.x[grouped])
        self.key_base = positive_class * self.size
        self.positive_cost, self.negative_cost = positive_cost, negative_cost

    def _active_range(self, a, c):
        """Index range [lo, hi) [m] of the sorted points with a x < 1 - c (a, c [m])."""
        n = len(self.x)
        with np.errstate(divide="ignore", invalid="ignore"):
            threshold = (1.0 - c) / a
        # a > 0: x < threshold, a prefix; a < 0: x > threshold, a suffix; a == 0: all points or none.
        everything = np.where(c < 1.0, n, 0)
        lo = np.where(a < 0, np.searchsorted(self.x, threshold, side="right"), 0)
        hi = np.where(a > 0, np.searchsorted(self.x, threshold, side="left"), np.where(a < 0, n, everything))
        return lo, hi

    def _class_moments(self, lo, hi):
        """Sums [m, 3] over the positive class's points of the sorted range [lo, hi) of each problem."""
        start = np.searchsorted(self.keys, self.key_base + lo)
        end = np.searchsorted(self.keys, self.key_base + hi)
        return self.grouped_moments[end] - self.grouped_moments[start]

    def evaluate(self, w: np.ndarray, b: np.ndarray, derivatives: bool = True):
        """Objective [m]; with `derivatives`, also the gradient [m, 2] and a generalised Hessian [m, 2, 2]."""
        lo, hi = self._active_range(w, b)
        positive = self._class_moments(lo, hi)
        lo, hi = self._active_range(-w, -b)
        negative = self.all_moments[hi] - self.all_moments[lo] - self._class_moments(lo, hi)
        objective = 0.5 * (w * w + b * b)
        gradient = np.stack([w, b], axis=1)
        hessian = np.broadcast_to(np.eye(2), (len(w), 2, 2)).copy()
        for moments, sign, cost in ((positive, 1.0, self.positive_cost), (negative, -1.0, self.negative_cost)):
            s0, s1, s2 = moments.T
            u, v = 1.0 - sign * b, sign * w  # each active term is (u - v x)^2
            objective += cost * (u * u * s0 - 2.0 * u * v * s1 + v * v * s2)
            if derivatives:
                gradient[:, 0] -= 2.0 * cost * sign * (u * s1 - v * s2)
                gradient[:, 1] -= 2.0 * cost * sign * (u * s0 - v * s1)
                hessian += 2.0 * cost[:, None, None] * np.stack([np.stack([s2, s1], -1), np.stack([s1, s0], -1)], -2)
        return (objective, gradient, hessian) if derivatives else objective


def solve_squared_hinge(
    x: np.ndarray, labels: np.ndarray, positive_class: np.ndarray, positive_cost: np.ndarray,
    negative_cost: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimises the m problems (w^2 + b^2)/2 + sum_i c_ij max(0, 1 - y_ij (w_j x_i + b_j))^2 exactly.

    Args:
      x: The feature [n], finite.
      labels: Class [n] of each point, integers in 0..K-1.
      positive_class: The class [m] at +1 in each problem: y_ij = +1 where labels[i] ==
        positive_class[j], -1 elsewhere.
      positive_cost: c_ij [m] of the +1 points of problem j (> 0).
      negative_cost: c_ij [m] of its -1 points (> 0).

    Returns:
      (w [m], b [m]), the optimum to rounding: a generalised Newton method from w = b = 0 with an
      Armijo line search, run until the gradient is 1e-11 of its initial size or no step decreases
      the objective any more.

    Raises:
      RuntimeError: If some problem has not converged after 100 Newton steps (not seen: the method
        ends once the active points stop changing; 300 random problems with C from 0.01 to 1e4 took
        at most 14 steps, and SAP's fits with C = 0.01 mostly one, all their hinges staying active).
    """
    positive_class = np.asarray(positive_class, np.int64)
    problems = _Problems(np.asarray(x, np.float64), np.asarray(labels, np.int64), positive_class,
                         np.asarray(positive_cost, np.float64), np.asarray(negative_cost, np.float64))
    m = len(positive_class)
    w, b = np.zeros(m), np.zeros(m)
    objective, gradient, hessian = problems.evaluate(w, b)
    tolerance = _GRADIENT_TOLERANCE * np.maximum(np.linalg.norm(gradient, axis=1), 1e-300)
    running = np.linalg.norm(gradient, axis=1) > tolerance
    for _ in range(_MAX_ITERATIONS):
        if not running.any():
            return w, b
        step = -np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        step[~running] = 0.0
        slope = np.sum(gradient * step, axis=1)
        size = np.ones(m)
        accepted = ~running
        for _ in range(_MAX_HALVINGS):
            trial = problems.evaluate(w + size * step[:, 0], b + size * step[:, 1], derivatives=False)
            # Close to the optimum the decrease falls below the objective's rounding: allow for it.
            allowance = _ROUNDING * np.maximum(np.abs(objective), np.abs(trial))
            accepted = accepted | (trial <= objective + _ARMIJO * size * slope + allowance)
            if accepted.all():
                break
            size = np.where(accepted, size, 0.5 * size)
        # A problem no step decreases any more sits at its optimum to rounding.
        running &= accepted
        size = np.where(accepted, size, 0.0)
        w, b = w + size * step[:, 0], b + size * step[:, 1]
        objective, gradient, hessian = problems.evaluate(w, b)
        running &= np.linalg.norm(gradient, axis=1) > tolerance
    if running.any():
        raise RuntimeError(f"the squared-hinge Newton solver did not converge in {_MAX_ITERATIONS} steps "
                           f"for {int(running.sum())} of {m} problems")
    return w, b


def fit(x: np.ndarray, labels: np.ndarray, c: float = SAP_C) -> LinearSVC1D:
    """Fits LinearSVC(C=c, class_weight="balanced") to one feature x [n] and labels [n] (any sortable values).

    Raises:
      ValueError: If the labels take fewer than 2 values (scikit-learn refuses those too), x is not
        finite, or labels and x differ in shape.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"the linear SVM needs a finite 1-D feature, got shape {x.shape} "
                         f"with {int(np.sum(~np.isfinite(x)))} non-finite values")
    labels = np.asarray(labels)
    if labels.shape != x.shape:
        raise ValueError(f"the linear SVM needs one label per point, got labels of shape {labels.shape} "
                         f"for a feature of shape {x.shape}")
    classes, indices = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"the linear SVM needs at least 2 classes, the training labels take only the value "
                         f"{classes[0].item()!r}" if len(classes) else "the linear SVM needs training points, got none")
    indices = indices.ravel()
    w, b = solve_squared_hinge(x, indices, *binary_problems(indices, len(classes), c))
    return LinearSVC1D(classes, w, b)


def decision_function(model: LinearSVC1D, x: np.ndarray) -> np.ndarray:
    """Decision values [n, m] of x [n]: w_j x + b_j (m = 1 for 2 classes, else one column per class)."""
    return np.asarray(x, np.float64)[:, None] * model.coef[None, :] + model.intercept[None, :]


def predict(model: LinearSVC1D, x: np.ndarray) -> np.ndarray:
    """Predicted labels [n], as scikit-learn predicts: the second class iff the decision > 0; else the first argmax."""
    scores = decision_function(model, x)
    if scores.shape[1] == 1:
        return model.classes[(scores[:, 0] > 0).astype(np.int64)]
    return model.classes[np.argmax(scores, axis=1)]


def accuracy(x_train: np.ndarray, labels_train: np.ndarray, x_test: np.ndarray, labels_test: np.ndarray,
             c: float = SAP_C) -> float:
    """Test accuracy of `fit(x_train, labels_train, c)` on x_test [n_test], labels_test [n_test]."""
    prediction = predict(fit(x_train, labels_train, c), x_test)
    return float(np.mean(prediction == np.asarray(labels_test)))
