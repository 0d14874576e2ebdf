"""bench/sap_sklearn.py: the made-up codes, the comparison on a fabricated scikit-learn output, its errors.

Its `sklearn` step needs scikit-learn, which is not a dependency; it is what README.md ("DCI and SAP") ran.
"""

import importlib.util
import os

import numpy as np
import pytest

from jointvae_tf.metrics import linear_svm, sap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("sap_sklearn", os.path.join(ROOT, "bench", "sap_sklearn.py"))
sap_sklearn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sap_sklearn)


@pytest.fixture(scope="module")
def codes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sap")
    paths = {kind: str(folder / f"{kind}.npz") for kind in ("noisy", "rotated")}
    for kind, path in paths.items():
        assert sap_sklearn.main(["encode", f"--synthetic={kind}", f"--codes={path}"]) == 0
    return paths


def test_made_up_codes_are_the_factors_over_their_sizes_plus_noise(codes):
    noisy, rotated = np.load(codes["noisy"]), np.load(codes["rotated"])
    sizes = np.array([3, 6, 40, 32, 32])
    for split, num in (("train", 10000), ("test", 5000)):
        factors = noisy[f"factors_{split}"]
        assert factors.shape == (num, 5) and np.all(factors < sizes)
        np.testing.assert_array_equal(rotated[f"factors_{split}"], factors)
        noise = noisy[f"codes_{split}"] - factors / sizes
        assert np.std(noise) == pytest.approx(0.02, rel=0.05)
        # The same noise, after an orthogonal map of the factors: lengths are kept.
        clean = rotated[f"codes_{split}"] - noise
        np.testing.assert_allclose(np.linalg.norm(clean, axis=1), np.linalg.norm(factors / sizes, axis=1), rtol=1e-10)


def test_compare_reports_no_difference_against_itself(codes, tmp_path, capsys):
    # A stand-in for the sklearn step's output: our own fits on the first points.
    saved = np.load(codes["noisy"])
    arrays = {key: saved[key][:300] if key.endswith("train") else saved[key][:100] for key in sap_sklearn.KEYS}
    scores = sap.score_matrix(*(arrays[key] for key in sap_sklearn.KEYS))
    train, test = arrays["codes_train"], arrays["codes_test"]
    predictions = np.array([linear_svm.predict(linear_svm.fit(train[:, i], arrays["factors_train"][:, j]), test[:, i])
                            for i in range(5) for j in range(5)])
    theirs = str(tmp_path / "theirs.npz")
    np.savez(theirs, sklearn_version=np.array("stand-in"), **{
        f"{solver}/{key}": value for solver in sap_sklearn.SOLVERS
        for key, value in (("scores", scores), ("predictions", predictions))})
    assert sap_sklearn.main(["compare", f"--codes={codes['noisy']}", f"--sklearn={theirs}", "--num_train=300",
                             "--num_test=100"]) == 0
    out = capsys.readouterr().out
    assert f"ours: SAP {sap.mean_gap_of_top_two(scores):.5f}" in out and "300 / 100 points" in out
    assert out.count("scikit-learn stand-in") == 2
    assert out.count("score matrices differ by at most 0.00000, 0 of 2500 test predictions differ") == 2
    # Other sizes than the sklearn step's are refused.
    with pytest.raises(SystemExit, match="run the sklearn step with the same codes and sizes"):
        sap_sklearn.main(["compare", f"--codes={codes['noisy']}", f"--sklearn={theirs}", "--num_train=300"])


def test_errors(codes, tmp_path, capsys):
    with pytest.raises(SystemExit, match="nope.npz does not exist"):
        sap_sklearn.main(["compare", f"--codes={tmp_path / 'nope.npz'}", f"--sklearn={codes['noisy']}"])
    with pytest.raises(SystemExit, match="has no dual_auto/scores"):
        sap_sklearn.main(["compare", f"--codes={codes['noisy']}", f"--sklearn={codes['noisy']}"])
    with pytest.raises(SystemExit) as error:
        sap_sklearn.main(["sklearn", f"--codes={codes['noisy']}", "--output=x.npz", "--num_train=0"])
    assert error.value.code == 2 and "--num_train must be an integer >= 1, got 0" in capsys.readouterr().err
