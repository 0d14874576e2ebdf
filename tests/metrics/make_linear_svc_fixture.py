"""Writes tests/metrics/linear_svc_sklearn.npz: scikit-learn's LinearSVC fits that test_linear_svm.py checks against.

scikit-learn is not a dependency of the project, so the fixture was made once, in a separate
virtualenv outside the repository (scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1):

    python -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn numpy
    PYTHONPATH=. /tmp/skvenv/bin/python tests/metrics/make_linear_svc_fixture.py

Each problem is one feature x with discrete labels, a few hundred training and 200 test
points: 2, 3, 6, 32 and 40 classes, overlapping or not, shifted and wide-ranged features, a
two-valued (one-hot) feature and a constant one. Each is fitted as disentanglement_lib's SAP
fits it, `LinearSVC(C=0.01, class_weight="balanced")`, with both liblinear solvers:
`dual="auto"` (the primal trust-region Newton method, scikit-learn's default since 1.5) and
`dual=True` (dual coordinate descent, the default before, so disentanglement_lib's), random_state=0.
The file keeps, per problem NAME: NAME/x_train, NAME/labels_train, NAME/x_test, and per solver
SOLVER in (dual_auto, dual_true): NAME/SOLVER/coef, NAME/SOLVER/intercept (decision functions
[m], m = 1 for two classes) and NAME/SOLVER/predictions (of x_test); plus "names", "note" and
"sklearn_version".
"""

import os
import sys

import numpy as np
import sklearn
from sklearn import svm

from export.fileio import atomic_path

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "linear_svc_sklearn.npz")
SOLVERS = {"dual_auto": "auto", "dual_true": True}


def problems(rng):
    """{name: (x_train, labels_train, x_test)} with 300 training points (40 classes: 600) and 200 test points."""

    def draw(num_train, labels_fn, feature_fn, num_test=200):
        labels = labels_fn(num_train + num_test)
        x = np.round(feature_fn(labels), 4)  # 4 decimals: a compact file, the values sklearn saw exactly
        return x[:num_train], labels[:num_train], x[num_train:]

    permutation = rng.permutation(6)
    return {
        "binary_overlap": draw(300, lambda n: (rng.uniform(size=n) < 0.3).astype(int),
                               lambda y: y + rng.normal(size=len(y))),
        "binary_shifted_labels_3_7": draw(300, lambda n: np.where(rng.uniform(size=n) < 0.6, 3, 7),
                                          lambda y: 5.0 + 0.75 * y + rng.normal(0, 0.5, len(y))),
        "binary_wide": draw(300, lambda n: rng.randint(2, size=n), lambda y: 50.0 * y + rng.normal(0, 20, len(y))),
        "three_overlap": draw(300, lambda n: rng.choice(3, size=n, p=[0.5, 0.3, 0.2]),
                              lambda y: 0.8 * y + rng.normal(size=len(y))),
        "three_wide": draw(300, lambda n: rng.randint(3, size=n), lambda y: 40.0 * y + rng.normal(0, 15, len(y))),
        "six_non_monotonic": draw(300, lambda n: rng.randint(6, size=n),
                                  lambda y: permutation[y] + rng.normal(0, 0.7, len(y))),
        "thirty_two_position": draw(300, lambda n: rng.randint(32, size=n),
                                    lambda y: y / 32.0 + rng.normal(0, 0.1, len(y))),
        "forty_noise": draw(600, lambda n: rng.randint(40, size=n), lambda y: rng.normal(size=len(y))),
        "one_hot_three": draw(300, lambda n: rng.randint(3, size=n),
                              lambda y: np.where(rng.uniform(size=len(y)) < 0.9, y == 1, y != 1).astype(float)),
        "constant_three": draw(300, lambda n: rng.choice(3, size=n, p=[0.2, 0.5, 0.3]), lambda y: np.full(len(y), 0.7)),
    }


def main():
    rng = np.random.RandomState(20261130)
    arrays = {
        "note": np.array(f"made by tests/metrics/make_linear_svc_fixture.py with scikit-learn {sklearn.__version__}, "
                         f"numpy {np.__version__}: LinearSVC(C=0.01, class_weight='balanced', dual=..., "
                         "random_state=0)"),
        "sklearn_version": np.array(sklearn.__version__),
    }
    made = problems(rng)
    arrays["names"] = np.array(sorted(made))
    for name, (x_train, labels_train, x_test) in made.items():
        arrays.update({f"{name}/x_train": x_train, f"{name}/labels_train": labels_train, f"{name}/x_test": x_test})
        for solver, dual in SOLVERS.items():
            model = svm.LinearSVC(C=0.01, class_weight="balanced", dual=dual, random_state=0)
            model.fit(x_train[:, None], labels_train)
            arrays[f"{name}/{solver}/coef"] = model.coef_[:, 0]
            arrays[f"{name}/{solver}/intercept"] = model.intercept_
            arrays[f"{name}/{solver}/predictions"] = model.predict(x_test[:, None])
    with atomic_path(OUTPUT) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT)} bytes, {len(made)} problems)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
