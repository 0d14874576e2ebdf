"""A classification tree (CART, Gini impurity) on quantile-binned features, in NumPy.

The predictor behind `dci` (its importance matrix and informativeness). disentanglement_lib
uses scikit-learn's `GradientBoostingClassifier` there (100 depth-3 regression trees per
class), and scikit-learn is not a dependency of this package: one tree per factor is the
lighter stand-in. Its feature importances are scikit-learn's definition for a tree: the total
weighted Gini decrease of the splits on each feature, normalised to sum to 1. How far the
scores move from disentanglement_lib's is measured in `jointvae_tf/metrics/dci.py`.

Features are binned once, on the training points: a column with at most `max_bins` distinct
values splits between any two of them (one-hot and other discrete codes exactly), a column
with more splits at `max_bins - 1` quantiles. Test points are binned with the training
edges. Ties between equally good splits go to the lowest feature, then the lowest threshold,
so a fit is deterministic; features that tie for a node's best split share its importance
equally (a duplicated code is as important as its copy).
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_MAX_DEPTH = 32
DEFAULT_MIN_SAMPLES_LEAF = 5
DEFAULT_MAX_BINS = 64


def bin_edges(values: np.ndarray, max_bins: int = DEFAULT_MAX_BINS) -> list[np.ndarray]:
    """Split thresholds of each column of values [n, d]: midpoints between distinct values, or quantiles.

    Returns d increasing arrays, each of at most max_bins - 1 thresholds.
    """
    edges = []
    for column in np.asarray(values, np.float64).T:
        distinct = np.unique(column)
        if len(distinct) > max_bins:
            distinct = np.unique(np.quantile(column, np.linspace(0.0, 1.0, max_bins)))
        edges.append((distinct[:-1] + distinct[1:]) / 2.0)
    return edges


def apply_bins(values: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin index of every value [n, d] (int64): the number of a column's thresholds below the value."""
    values = np.asarray(values, np.float64)
    return np.stack([np.searchsorted(e, values[:, j], side="left") for j, e in enumerate(edges)], axis=1)


def gini_split_gains(counts: np.ndarray, min_samples_leaf: int) -> np.ndarray:
    """Decrease of n * Gini impurity for every split "bin <= b" of every feature.

    Args:
      counts: class counts per feature and bin [d, bins, classes] of one node's points.
      min_samples_leaf: splits leaving fewer points on a side get -inf.

    Returns:
      [d, bins - 1]: n * G(node) - n_left * G(left) - n_right * G(right), with
      n * G = n - sum_k c_k^2 / n (G = 1 - sum_k p_k^2).
    """
    counts = np.asarray(counts, np.int64)
    total = counts[0].sum(axis=0)  # [classes]
    n = float(total.sum())
    left = np.cumsum(counts[:, :-1, :], axis=1)
    right = total - left
    n_left = left.sum(axis=-1).astype(np.float64)
    n_right = n - n_left
    square_left = np.einsum("dbk,dbk->db", left, left).astype(np.float64)
    square_right = np.einsum("dbk,dbk->db", right, right).astype(np.float64)
    valid = (n_left >= min_samples_leaf) & (n_right >= min_samples_leaf)
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = square_left / n_left + square_right / n_right  # n * G(node) - gain = n - kept
    gains = kept - float(total @ total) / n
    return np.where(valid & (n_left > 0) & (n_right > 0), gains, -np.inf)


@dataclasses.dataclass
class Tree:
    """A fitted tree. Node arrays are [num_nodes]; node 0 is the root, leaves have feature -1."""

    edges: list[np.ndarray]
    classes: np.ndarray
    feature: np.ndarray
    split_bin: np.ndarray  # points with bin <= split_bin go left
    left: np.ndarray
    right: np.ndarray
    label: np.ndarray  # index into `classes` of the node's majority class
    feature_importances: np.ndarray  # [d], sums to 1 (all zero for a tree without a split)

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Class labels [n] of points values [n, d]."""
        binned = apply_bins(values, self.edges)
        node = np.zeros(len(binned), np.int64)
        rows = np.arange(len(binned))
        while True:
            feature = self.feature[node]
            inner = feature >= 0
            if not inner.any():
                return self.classes[self.label[node]]
            goes_left = binned[rows[inner], feature[inner]] <= self.split_bin[node[inner]]
            node[inner] = np.where(goes_left, self.left[node[inner]], self.right[node[inner]])

    def accuracy(self, values: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of points whose predicted class is their label."""
        return float(np.mean(self.predict(values) == np.asarray(labels)))


def fit_tree(
    values: np.ndarray,
    labels: np.ndarray,
    max_depth: int = DEFAULT_MAX_DEPTH,
    min_samples_leaf: int = DEFAULT_MIN_SAMPLES_LEAF,
    max_bins: int = DEFAULT_MAX_BINS,
) -> Tree:
    """Grows a classification tree, best Gini split first at every node, to `max_depth`.

    Args:
      values: features [n, d].
      labels: classes [n] (any integers).
      max_depth: deepest level of splits (the root is depth 0).
      min_samples_leaf: fewest training points on each side of a split.
      max_bins: most thresholds + 1 per feature (see `bin_edges`).

    Returns:
      The Tree; a node stops splitting when it is pure or no split lowers its impurity.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or len(values) != len(labels) or len(values) == 0:
        raise ValueError(f"values must be [n, d] with n = len(labels) >= 1, got {values.shape} and {len(labels)}")
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    num_classes, (num_points, num_features) = len(classes), values.shape
    edges = bin_edges(values, max_bins)
    binned = apply_bins(values, edges)
    num_bins = max(len(e) for e in edges) + 1
    # Flat index of (feature, bin, class) of every point and feature, for one bincount per node.
    base = (np.arange(num_features) * num_bins)[None, :] + binned
    feature, split_bin, left, right, label = [], [], [], [], []
    importances = np.zeros(num_features)
    stack = [(np.arange(num_points), 0, None, None)]  # (points, depth, parent, is_left)
    while stack:
        points, depth, parent, is_left = stack.pop()
        node = len(feature)
        if parent is not None:
            (left if is_left else right)[parent] = node
        class_counts = np.bincount(y[points], minlength=num_classes)
        for array in (feature, split_bin, left, right):
            array.append(-1)
        label.append(int(np.argmax(class_counts)))
        if (depth >= max_depth or class_counts.max() == len(points) or num_bins == 1
                or len(points) < 2 * min_samples_leaf):
            continue
        # Only the classes present in the node (the gains do not depend on empty classes).
        present, local_y = np.unique(y[points], return_inverse=True)
        index = (base[points] * len(present) + local_y[:, None]).ravel()
        counts = np.bincount(index, minlength=num_features * num_bins * len(present))
        gains = gini_split_gains(counts.reshape(num_features, num_bins, len(present)), min_samples_leaf)
        best_gain = gains.max()
        if not best_gain > 1e-12 * len(points):
            continue
        best_feature, best_bin = divmod(int(np.argmax(gains)), num_bins - 1)
        feature[node], split_bin[node] = best_feature, best_bin
        # Features whose best split is as good (e.g. duplicated codes) share its importance.
        tied = gains.max(axis=1) >= best_gain - 1e-9 * best_gain
        importances[tied] += best_gain / tied.sum()
        goes_left = binned[points, best_feature] <= best_bin
        # Right pushed first so the left subtree is numbered first (any order gives the same tree).
        stack.append((points[~goes_left], depth + 1, node, False))
        stack.append((points[goes_left], depth + 1, node, True))
    total = importances.sum()
    return Tree(
        edges=edges, classes=classes, feature=np.array(feature), split_bin=np.array(split_bin),
        left=np.array(left), right=np.array(right), label=np.array(label),
        feature_importances=importances / total if total > 0 else importances,
    )
