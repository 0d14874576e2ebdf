"""The evaluate binary end to end, in subprocesses: metrics.json, the table, skipped metrics, bad input."""

import json
import os
import subprocess
import sys

import pytest
from binary_runs import run_in_one_process
from shared_data import shared_data

from jointvae_tf.training import checkpoints
from jointvae_tf.model import JointVAE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--factor_vae_variance=200", "--factor_vae_train=20", "--factor_vae_eval=10", "--mig_train=200",
         "--beta_vae_train=10", "--beta_vae_eval=10", "--num_accuracy_images=150", "--dci_train=200", "--dci_test=100",
         "--sap_train=200", "--sap_test=100"]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _evaluate(*flags, timeout=300):
    return subprocess.run([sys.executable, "-m", "jointvae_tf.evaluate", *flags], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _model_dir(path, image_shape, dataset):
    model = JointVAE(image_shape, "cont=2,disc=3", seed=0)
    checkpoints.save_model_dir(model, str(path), {"dataset": dataset})
    return str(path)


@pytest.fixture(scope="module")
def dsprites_dir(tmp_path_factory):
    return _model_dir(tmp_path_factory.mktemp("dsprites"), (64, 64, 1), "dsprites")


def _error_line(result):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("jointvae-evaluate: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_dsprites_writes_metrics_pictures_and_a_table(dsprites_dir):
    result = _evaluate(f"--model_dir={dsprites_dir}", *SMALL, "--seed=5")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(os.path.join(dsprites_dir, "eval", "metrics.json")))
    assert metrics["dataset"] == "dsprites" and metrics["seed"] == 5 and metrics["skipped"] == {}
    for key in ("factor_vae_score", "mig", "beta_vae_score", "discrete_accuracy", "dci_disentanglement",
                "dci_completeness", "dci_informativeness_test", "sap_score"):
        assert 0.0 <= metrics["metrics"][key] <= 1.0
        assert any(line.startswith(key) and "|" in line for line in result.stdout.splitlines()), key
    assert metrics["settings"]["factor_vae_train"] == 20 and metrics["settings"]["num_accuracy_images"] == 150
    assert os.listdir(os.path.join(dsprites_dir, "eval", "images"))
    assert "metric" in result.stdout and "| value" in result.stdout


def test_mnist_skips_ground_truth_metrics_with_the_reason(tmp_path):
    mnist_dir = shared_data("mnist")
    model_dir = _model_dir(tmp_path / "mnist", (32, 32, 1), f"idx:{mnist_dir}")
    output_dir = str(tmp_path / "out")
    result = _evaluate(f"--model_dir={model_dir}", f"--output_dir={output_dir}", "--num_accuracy_images=300",
                       "--nopictures")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(os.path.join(output_dir, "metrics.json")))
    assert metrics["metrics"]["num_evaluation_images"] == 300
    assert 0.0 <= metrics["metrics"]["discrete_accuracy"] <= 1.0
    assert set(metrics["skipped"]) == {"factor_vae", "mig", "beta_vae", "dci", "sap"}
    for name in ("factor_vae", "mig", "beta_vae", "dci", "sap"):
        assert f"skipped {name}: idx:{mnist_dir} has no ground-truth factor sampler" in result.stdout
    assert not os.path.exists(os.path.join(output_dir, "images"))


BAD_INPUT = [
    (["--model_dir=/no/such/model_dir"], "model_dir /no/such/model_dir not found"),
    ([], "no model given"),
    (["--dataset=imagenet"], "unknown dataset 'imagenet'"),
    (["--dataset=mnist_as_dsprites"], "takes images [32, 32, 1] but dataset dsprites gives [64, 64, 1]"),
    (["--metrics=speed"], "unknown metrics ['speed']"),
    (["--mig_train=0"], "mig_train must be an integer >= 1"),
]


@pytest.fixture(scope="module")
def bad_input_runs(dsprites_dir, tmp_path_factory):
    """{message: Run} of jointvae-evaluate on each bad input, all in one process (one TensorFlow import, not one
    per case); the binary's own process exit on bad input is tested by test_empty_model_dir_says_what_is_missing."""
    tmp_path = tmp_path_factory.mktemp("bad_input")
    cases = {}
    for i, (flags, message) in enumerate(BAD_INPUT):
        if flags and flags[0] == "--dataset=mnist_as_dsprites":
            flags = [f"--model_dir={_model_dir(tmp_path / 'm', (32, 32, 1), 'mnist')}", "--dataset=dsprites"]
        elif flags and not flags[0].startswith("--model_dir"):
            flags = [f"--model_dir={dsprites_dir}", *flags]
        cases[message] = [*flags, f"--output_dir={tmp_path / f'out_{i}'}"]
    return run_in_one_process("jointvae_tf.evaluate", cases, cwd=ROOT, env=_env())


@pytest.mark.parametrize("flags, message", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_1(bad_input_runs, flags, message):
    line = _error_line(bad_input_runs[message])
    assert message in line


def test_empty_model_dir_says_what_is_missing(tmp_path):
    line = _error_line(_evaluate(f"--model_dir={tmp_path}"))
    assert "config.json not found" in line
