"""Tests for jointvae_tf/metrics/linear_svm.py: the exact one-feature LinearSVC behind SAP.

The solver is checked against the primal written out here point by point (scipy.optimize on
it, and its gradient), and its predictions against scikit-learn's own, stored in
linear_svc_sklearn.npz (made by make_linear_svc_fixture.py in a virtualenv with scikit-learn
1.9.1; scikit-learn is not a dependency, so nothing here needs it).
"""

import os

import numpy as np
import pytest
from scipy import optimize

from jointvae_tf.metrics import linear_svm

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "linear_svc_sklearn.npz")


def _primal(theta, x, y, costs):
    """(w^2 + b^2)/2 + sum_i c_i max(0, 1 - y_i (w x_i + b))^2, point by point, and its gradient [2]."""
    w, b = theta
    slack = np.maximum(0.0, 1.0 - y * (w * x + b))
    objective = 0.5 * (w * w + b * b) + np.sum(costs * slack**2)
    dloss = -2.0 * costs * y * slack
    return objective, np.array([w + np.sum(dloss * x), b + np.sum(dloss)])


def _per_point(labels, positive_class, positive_cost, negative_cost):
    """y [n] in {-1, +1} and costs c [n] of one problem, spelled out."""
    positive = labels == positive_class
    return np.where(positive, 1.0, -1.0), np.where(positive, positive_cost, negative_cost)


def _problems():
    rng = np.random.RandomState(0)
    made = []
    for index, (n, k, c, kind) in enumerate([
        (300, 2, 0.01, "overlap"), (300, 3, 0.01, "overlap"), (1000, 6, 0.01, "shifted"),
        (400, 3, 1.0, "wide"), (400, 5, 100.0, "wide"), (200, 4, 10.0, "one_hot"),
        (200, 3, 0.01, "constant"), (50, 2, 1000.0, "separable"), (2000, 40, 0.01, "overlap"),
    ]):
        labels = rng.randint(k, size=n)
        x = {
            "overlap": labels + rng.normal(size=n),
            "shifted": 20.0 + 0.3 * labels + rng.normal(0, 0.5, n),
            "wide": 40.0 * labels + rng.normal(0, 15, n),
            "one_hot": (labels == 1).astype(float),
            "constant": np.full(n, 0.7),
            "separable": np.where(labels == 1, 1.0, -1.0) * rng.uniform(1, 2, n),
        }[kind]
        made.append(pytest.param(x, labels, c, id=f"{index}-{kind}-K{k}-C{c}"))
    return made


@pytest.mark.parametrize("x, labels, c", _problems())
def test_solver_reaches_the_primal_optimum(x, labels, c):
    model = linear_svm.fit(x, labels, c)
    positive_class, positive_cost, negative_cost = linear_svm.binary_problems(labels, len(model.classes), c)
    for j in range(len(positive_class)):
        y, costs = _per_point(labels, positive_class[j], positive_cost[j], negative_cost[j])
        ours = np.array([model.coef[j], model.intercept[j]])
        objective, gradient = _primal(ours, x, y, costs)
        # KKT: the objective is 1-strongly convex (the regulariser), so |theta - theta*| <= |gradient|.
        _, start = _primal(np.zeros(2), x, y, costs)
        assert np.linalg.norm(gradient) <= 1e-9 * max(1.0, np.linalg.norm(start))
        reference = optimize.minimize(_primal, np.zeros(2), args=(x, y, costs), jac=True, method="BFGS",
                                      options={"gtol": 1e-10, "maxiter": 10000})
        assert objective <= reference.fun * (1 + 1e-12)
        assert ours == pytest.approx(reference.x, abs=1e-6 * max(1.0, np.abs(reference.x).max()))


def test_balanced_class_weights():
    labels = np.array([0, 0, 0, 1, 2, 2])
    # n / (K * count_k) = 6 / (3 * [3, 1, 2])
    np.testing.assert_allclose(linear_svm.balanced_class_weights(labels, 3), [2 / 3, 2.0, 1.0])
    # Each class then weighs n / K in total.
    weights = linear_svm.balanced_class_weights(labels, 3)
    np.testing.assert_allclose(weights * np.bincount(labels), [2.0, 2.0, 2.0])


def test_binary_problems_one_model_for_two_classes_second_class_positive():
    labels = np.array([0, 0, 0, 1])  # weights 4/(2*3), 4/(2*1)
    positive_class, positive_cost, negative_cost = linear_svm.binary_problems(labels, 2, 0.5)
    np.testing.assert_array_equal(positive_class, [1])
    np.testing.assert_allclose(positive_cost, [0.5 * 2.0])
    np.testing.assert_allclose(negative_cost, [0.5 * 2 / 3])


def test_binary_problems_one_vs_rest_leaves_the_negatives_unweighted():
    labels = np.array([0, 0, 0, 1, 2, 2])
    positive_class, positive_cost, negative_cost = linear_svm.binary_problems(labels, 3, 0.5)
    np.testing.assert_array_equal(positive_class, [0, 1, 2])
    np.testing.assert_allclose(positive_cost, 0.5 * np.array([2 / 3, 2.0, 1.0]))
    np.testing.assert_allclose(negative_cost, [0.5, 0.5, 0.5])


def test_one_vs_rest_differs_from_weighting_the_negatives():
    # The unweighted negatives matter: weighting them by their class would move the optimum.
    rng = np.random.RandomState(3)
    labels = rng.choice(3, size=500, p=[0.7, 0.2, 0.1])
    x = labels + rng.normal(size=500)
    model = linear_svm.fit(x, labels, 0.01)
    weights = 0.01 * linear_svm.balanced_class_weights(labels, 3)
    y = np.where(labels == 0, 1.0, -1.0)
    _, gradient_ours = _primal([model.coef[0], model.intercept[0]], x, y, np.where(labels == 0, weights[0], 0.01))
    _, gradient_weighted = _primal([model.coef[0], model.intercept[0]], x, y, weights[labels])
    assert np.linalg.norm(gradient_ours) < 1e-9 < 1e-3 < np.linalg.norm(gradient_weighted)


def test_prediction_rule():
    binary = linear_svm.LinearSVC1D(np.array([3, 7]), np.array([1.0]), np.array([-1.0]))
    # The second class iff w x + b > 0; exactly 0 gives the first.
    np.testing.assert_array_equal(linear_svm.predict(binary, np.array([0.5, 1.0, 1.5])), [3, 3, 7])
    ovr = linear_svm.LinearSVC1D(np.array([0, 1, 2]), np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0]))
    # The largest decision value; at x = 0 all three tie and the first class wins.
    np.testing.assert_array_equal(linear_svm.predict(ovr, np.array([-2.0, 0.0, 2.0])), [0, 0, 2])
    np.testing.assert_allclose(linear_svm.decision_function(ovr, np.array([2.0])), [[-2.0, 0.0, 2.0]])


def test_agrees_with_scikit_learn():
    fixture = np.load(FIXTURE)
    assert "scikit-learn 1.9.1" in str(fixture["note"])
    checked = 0
    for name in fixture["names"]:
        x_train, labels_train, x_test = (fixture[f"{name}/{key}"] for key in ("x_train", "labels_train", "x_test"))
        ours = linear_svm.fit(x_train, labels_train)
        for solver in ("dual_auto", "dual_true"):
            coef, intercept, predictions = (fixture[f"{name}/{solver}/{key}"]
                                            for key in ("coef", "intercept", "predictions"))
            # Our prediction rule on scikit-learn's decision functions gives its predictions exactly ...
            theirs = linear_svm.LinearSVC1D(ours.classes, coef, intercept)
            np.testing.assert_array_equal(linear_svm.predict(theirs, x_test), predictions, err_msg=f"{name} {solver}")
            # ... our optimum is theirs up to liblinear's stopping tolerance (largest gap: 1.4e-3 on the
            # intercept of the wide features, where liblinear stops early; 2e-6 elsewhere) ...
            np.testing.assert_allclose(ours.coef, coef, atol=2e-3, err_msg=f"{name} {solver}")
            np.testing.assert_allclose(ours.intercept, intercept, atol=2e-3, err_msg=f"{name} {solver}")
            # ... and no prediction differs (2,000 test points per solver).
            np.testing.assert_array_equal(linear_svm.predict(ours, x_test), predictions, err_msg=f"{name} {solver}")
            checked += len(predictions)
    assert checked == 2 * 10 * 200


def test_constant_feature_predicts_its_most_frequent_class():
    # Fitted as scikit-learn fits it (the fixture's "constant_three"), no error: with balanced weights every
    # class carries n / K at +1, and the most frequent class has the fewest -1 points against it.
    labels = np.repeat([0, 1, 2], [20, 50, 30])
    model = linear_svm.fit(np.full(100, 0.7), labels)
    np.testing.assert_array_equal(linear_svm.predict(model, np.full(3, 0.7)), [1, 1, 1])
    # A feature that is 0 everywhere leaves the weights at exactly 0.
    np.testing.assert_array_equal(linear_svm.fit(np.zeros(100), labels).coef, np.zeros(3))


def test_accuracy():
    x = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 1.2])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert linear_svm.accuracy(x, labels, x, labels, c=1.0) == 1.0
    assert linear_svm.accuracy(x, labels, x, 1 - labels, c=1.0) == 0.0


@pytest.mark.parametrize(
    "x, labels, message",
    [
        (np.arange(4.0), np.zeros(4, int), "at least 2 classes, the training labels take only the value 0"),
        (np.zeros(0), np.zeros(0, int), "needs training points, got none"),
        (np.array([0.0, np.nan]), np.array([0, 1]), r"finite 1-D feature, got shape \(2,\) with 1 non-finite"),
        (np.zeros((3, 2)), np.array([0, 1, 1]), r"finite 1-D feature, got shape \(3, 2\)"),
        (np.zeros(3), np.array([0, 1]), r"one label per point, got labels of shape \(2,\) for a feature of shape"),
    ],
)
def test_rejects_degenerate_inputs(x, labels, message):
    with pytest.raises(ValueError, match=message):
        linear_svm.fit(x, labels)
