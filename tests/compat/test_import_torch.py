"""The jointvae-import-torch binary, run as a subprocess on the shared MNIST reference model."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import jointvae_tf as jv
from jointvae_tf import checkpoints

pytest.importorskip("torch", reason="torch is not installed (pip install 'jointvae-tf[torch]')")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST_REFERENCE = os.path.join(ROOT, "..", "shared", "data", "reference_models", "mnist")


@pytest.fixture(scope="module")
def mnist_reference():
    if not os.path.isfile(os.path.join(MNIST_REFERENCE, "model.pt")):
        pytest.skip(f"shared reference model not found: {os.path.normpath(MNIST_REFERENCE)}")
    return MNIST_REFERENCE


def _import(*flags):
    python_path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=python_path)
    return subprocess.run(
        [sys.executable, "-m", "jointvae_tf.compat.import_torch", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def _error_line(result):
    """The binary's one-line error (TensorFlow may log other lines before it)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("jointvae-import-torch: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_writes_a_model_dir_that_restores_the_imported_model(tmp_path, mnist_reference):
    model_dir = tmp_path / "runs" / "mnist"
    flags = [f"--checkpoint_dir={mnist_reference}", f"--model_dir={model_dir}"]
    result = _import(*flags)
    assert result.returncode == 0, result.stderr
    assert str(model_dir) in result.stdout

    config = json.loads((model_dir / "config.json").read_text())
    with open(os.path.join(mnist_reference, "specs.json")) as f:
        assert config["imported_from"] == {"checkpoint_dir": os.path.abspath(mnist_reference), "specs": json.load(f)}
    assert config["dataset"] == "mnist"
    assert config["model"]["latent_spec"] == {"cont": 10, "disc": [10]}
    assert os.listdir(tmp_path / "runs") == ["mnist"]  # no staging folder left behind

    restored = checkpoints.restore_model(str(model_dir))
    imported = jv.compat.load_torch_checkpoint(os.path.join(mnist_reference, "model.pt"))
    latents = imported.sample_prior(16, seed=0)
    np.testing.assert_array_equal(restored.decode(latents), imported.decode(latents))

    # A second import refuses to replace the checkpoint, and leaves it alone ...
    checkpoint_files = sorted(os.listdir(model_dir / "checkpoints"))
    result = _import(*flags)
    assert result.returncode == 1
    assert f"--model_dir {model_dir} already holds a checkpoint: pass --overwrite" in _error_line(result)
    assert sorted(os.listdir(model_dir / "checkpoints")) == checkpoint_files
    # ... unless told to: then the old contents go.
    (model_dir / "stale.txt").write_text("from an earlier run")
    result = _import(*flags, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "config.json"]
    assert os.listdir(tmp_path / "runs") == ["mnist"]


def test_bad_input_fails_with_one_line_naming_the_problem(tmp_path, mnist_reference):
    checkpoint_dir = tmp_path / "reference"
    checkpoint_dir.mkdir()
    shutil.copy(os.path.join(mnist_reference, "model.pt"), checkpoint_dir / "model.pt")
    specs = {"dataset": "svhn", "latent_spec": {"cont": 10, "disc": [10]}}
    (checkpoint_dir / "specs.json").write_text(json.dumps(specs))
    result = _import(f"--checkpoint_dir={checkpoint_dir}", f"--model_dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert "unknown dataset 'svhn' in specs.json key 'dataset'" in _error_line(result)
    assert os.listdir(tmp_path) == ["reference"]  # nothing written
