"""SAP with our exact linear SVM (`jv.metrics.sap`) against scikit-learn's LinearSVC on the same saved codes.

scikit-learn is not a dependency, so it runs in a separate virtualenv, on codes this script saves:

    # 1. codes SAP draws (full size, seed 0): a model's, or made-up codes of the dSprites factors
    python bench/sap_sklearn.py encode --model_dir=../shared/data/reference_models/dsprites --codes=/tmp/sap_codes.npz
    python bench/sap_sklearn.py encode --synthetic=noisy --codes=/tmp/sap_noisy.npz    # factor / size + N(0, 0.02)
    python bench/sap_sklearn.py encode --synthetic=rotated --codes=/tmp/sap_rotated.npz  # the same, rotated
    # 2. disentanglement_lib's calls, LinearSVC(C=0.01, class_weight="balanced"), both liblinear solvers
    python -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn numpy
    PYTHONPATH=. /tmp/skvenv/bin/python bench/sap_sklearn.py sklearn --codes=/tmp/sap_codes.npz --output=/tmp/sap_sk.npz
    # 3. ours on the same codes, and the differences
    python bench/sap_sklearn.py compare --codes=/tmp/sap_codes.npz --sklearn=/tmp/sap_sk.npz

`--num_train` / `--num_test` (steps 2 and 3) keep only the first points of each split. The
`sklearn` step imports nothing of the project but `export.fileio` (standard library only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from export.fileio import atomic_path

SOLVERS = {"dual_auto": "auto", "dual_true": True}  # scikit-learn's default since 1.5; before (disentanglement_lib's)
KEYS = ("codes_train", "factors_train", "codes_test", "factors_test")


def _save(path: str, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load(path: str, keys, num_train: int | None = None, num_test: int | None = None) -> dict:
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path} does not exist (make it with the step before)")
    with np.load(path) as saved:
        missing = [key for key in keys if key not in saved]
        if missing:
            raise SystemExit(f"error: {path} has no {', '.join(missing)}: not a file this script wrote for that step")
        arrays = {key: saved[key] for key in keys}
    for key in list(arrays):
        limit = num_train if key.endswith("_train") else num_test if key.endswith("_test") else None
        arrays[key] = arrays[key][:limit] if limit else arrays[key]
    return arrays


def encode(args) -> None:
    """Saves the codes and factors SAP draws at full size with seed 0 (`utils.sample_train_test`)."""
    from jointvae_tf import data, evaluation
    from jointvae_tf.metrics import utils

    ground_truth = data.DSprites()
    if args.synthetic:
        # Codes that are the factors themselves: factor / size + N(0, 0.02), rotated by a random orthogonal matrix.
        sizes = np.asarray(ground_truth.factor_sizes, np.float64)
        factor_state, noise_state = np.random.RandomState(0), np.random.RandomState(1)
        factors = [ground_truth.sample_factors(num, factor_state) for num in (10000, 5000)]
        rotation = np.linalg.qr(np.random.RandomState(3).normal(size=(5, 5)))[0] if args.synthetic == "rotated" \
            else np.eye(5)
        codes = [f / sizes @ rotation + noise_state.normal(0, 0.02, f.shape) for f in factors]
        arrays = dict(zip(KEYS, (codes[0], factors[0], codes[1], factors[1])))
    else:
        try:
            model, _ = evaluation.load_model(args.model_dir)
        except evaluation.EvaluationError as error:
            raise SystemExit(f"error: {error}") from None
        representation_fn = utils.make_representation_fn(evaluation.encode_fn(model))
        arrays = dict(zip(KEYS, utils.sample_train_test(ground_truth, representation_fn, np.random.RandomState(0),
                                                        10000, 5000, 16, "SAP")))
    _save(args.codes, arrays)
    print(f"wrote {args.codes}: {arrays['codes_train'].shape[1]} latents, "
          f"{len(arrays['codes_train'])} / {len(arrays['codes_test'])} points")


def run_sklearn(args) -> None:
    """disentanglement_lib's `_compute_score_matrix` for discrete factors, with each liblinear solver."""
    import warnings

    import sklearn
    from sklearn import svm
    from sklearn.exceptions import ConvergenceWarning

    codes = _load(args.codes, KEYS, args.num_train, args.num_test)
    num_codes, num_factors = codes["codes_train"].shape[1], codes["factors_train"].shape[1]
    out = {"sklearn_version": np.array(sklearn.__version__)}
    for solver, dual in SOLVERS.items():
        scores, predictions, unconverged = np.zeros((num_codes, num_factors)), [], 0
        start = time.perf_counter()
        for i in range(num_codes):
            for j in range(num_factors):
                classifier = svm.LinearSVC(C=0.01, class_weight="balanced", dual=dual)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    classifier.fit(codes["codes_train"][:, i, None], codes["factors_train"][:, j])
                unconverged += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
                predictions.append(classifier.predict(codes["codes_test"][:, i, None]))
                scores[i, j] = np.mean(predictions[-1] == codes["factors_test"][:, j])
        seconds = time.perf_counter() - start
        out.update({f"{solver}/scores": scores, f"{solver}/predictions": np.array(predictions),
                    f"{solver}/seconds": np.array(seconds)})
        print(f"scikit-learn {sklearn.__version__} {solver}: score matrix in {seconds:.1f} s, "
              f"{unconverged} of {num_codes * num_factors} fits stopped at max_iter")
    _save(args.output, out)


def compare(args) -> None:
    """Ours on the same codes: SAP, seconds, and the differences to each scikit-learn solver."""
    from jointvae_tf.metrics import linear_svm, sap

    codes = _load(args.codes, KEYS, args.num_train, args.num_test)
    theirs = _load(args.sklearn, [f"{solver}/{key}" for solver in SOLVERS for key in ("scores", "predictions")]
                   + ["sklearn_version"])
    start = time.perf_counter()
    scores = sap.score_matrix(*(codes[key] for key in KEYS))
    seconds = time.perf_counter() - start
    num_codes, num_factors = scores.shape
    train, test = codes["codes_train"], codes["codes_test"]
    predictions = np.array([linear_svm.predict(linear_svm.fit(train[:, i], codes["factors_train"][:, j]), test[:, i])
                            for i in range(num_codes) for j in range(num_factors)])
    if predictions.shape != theirs["dual_auto/predictions"].shape:
        raise SystemExit(f"error: {args.sklearn} holds predictions of shape {theirs['dual_auto/predictions'].shape}, "
                         f"ours have {predictions.shape}: run the sklearn step with the same codes and sizes")
    print(f"ours: SAP {sap.mean_gap_of_top_two(scores):.5f}, score matrix in {seconds:.2f} s ({num_codes} latents x "
          f"{num_factors} factors, {len(codes['codes_train'])} / {len(codes['codes_test'])} points)")
    for solver in SOLVERS:
        their_scores = theirs[f"{solver}/scores"]
        differ = int(np.sum(predictions != theirs[f"{solver}/predictions"]))
        print(f"scikit-learn {theirs['sklearn_version']} {solver}: SAP {sap.mean_gap_of_top_two(their_scores):.5f}, "
              "score matrices differ by at most "
              f"{np.abs(scores - their_scores).max():.5f}, {differ} of {predictions.size} test predictions differ")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("encode", help="save the codes SAP draws (project virtualenv)")
    source = step.add_mutually_exclusive_group(required=True)
    source.add_argument("--model_dir", help="a model_dir, .keras file or PyTorch reference folder (dSprites)")
    source.add_argument("--synthetic", choices=("noisy", "rotated"), help="made-up codes of the dSprites factors")
    step.add_argument("--codes", required=True, help="output .npz")
    step = steps.add_parser("sklearn", help="scikit-learn's score matrices (a virtualenv with scikit-learn)")
    step.add_argument("--codes", required=True)
    step.add_argument("--output", required=True, help="output .npz")
    step = steps.add_parser("compare", help="ours against the sklearn step's (project virtualenv)")
    step.add_argument("--codes", required=True)
    step.add_argument("--sklearn", required=True, help="the sklearn step's output")
    for name in ("sklearn", "compare"):
        for flag in ("--num_train", "--num_test"):
            steps.choices[name].add_argument(flag, type=int, help="keep only the first points of the split")
    args = parser.parse_args(argv)
    for flag in ("num_train", "num_test"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be an integer >= 1, got {getattr(args, flag)}")
    {"encode": encode, "sklearn": run_sklearn, "compare": compare}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
