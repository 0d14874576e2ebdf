"""The jointvae-import-torch binary, run as a subprocess on the shared MNIST reference model and
on small synthetic reference-shaped checkpoints (which need no shared data)."""

import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
from binary_runs import run_in_one_process
from file_tree import snapshot as _tree
from shared_data import shared_data

import jointvae_tf as jv
from jointvae_tf.training import checkpoints

pytest.importorskip("torch", reason="torch is not installed (pip install 'jointvae-tf[torch]')")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def mnist_reference():
    return os.path.dirname(shared_data("reference_models", "mnist", "model.pt"))


def _env():
    python_path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=python_path)


def _import(*flags):
    return subprocess.run(
        [sys.executable, "-m", "jointvae_tf.compat.import_torch", *flags],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
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
    (model_dir / "stale.txt").write_text("the user's notes")
    # Both refusals in one process (one TensorFlow and torch import): the binary's own exit on bad input is
    # tested by test_bad_input_fails_with_one_line_naming_the_problem.
    refused = run_in_one_process("jointvae_tf.compat.import_torch",
                                 {"again": flags, "over_a_foreign_file": [*flags, "--overwrite"]},
                                 cwd=ROOT, env=_env(), timeout=300)
    result = refused["again"]
    assert result.returncode == 1
    assert f"--model_dir {model_dir} already holds a checkpoint: pass --overwrite" in _error_line(result)
    # ... unless told to, and only while it holds nothing but what the import wrote.
    result = refused["over_a_foreign_file"]
    assert result.returncode == 1
    assert "holds files that were not written by jointvae-import-torch (stale.txt)" in _error_line(result)
    assert sorted(os.listdir(model_dir / "checkpoints")) == checkpoint_files
    assert (model_dir / "stale.txt").read_text() == "the user's notes"
    (model_dir / "stale.txt").unlink()
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


# --------------------------------------------------------------------------- synthetic checkpoints
SYNTHETIC_SPECS = {"dataset": "mnist", "latent_spec": {"cont": 2, "disc": [3]}}


def _reference_in(tmp_path):
    """tmp/runs/reference: a reference-shaped checkpoint (random weights), beside a sibling run and notes."""
    import torch

    from jointvae_tf.compat import torch as torch_compat

    folder = tmp_path / "runs" / "reference"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    shapes = torch_compat.expected_state_dict_shapes(torch_compat.model_from_specs(SYNTHETIC_SPECS))
    torch.save({key: 0.05 * torch.randn(shape, generator=generator) for key, shape in shapes.items()},
               str(folder / "model.pt"))
    (folder / "specs.json").write_text(json.dumps(SYNTHETIC_SPECS))
    (tmp_path / "runs" / "sibling").mkdir()
    (tmp_path / "runs" / "sibling" / "config.json").write_text("{}")
    (tmp_path / "runs" / "notes.txt").write_text("the user's own file")
    return folder


@pytest.fixture
def reference(tmp_path):
    return _reference_in(tmp_path)


OVER_THE_CHECKPOINT = [(".", "is"), ("..", "contains"), ("imported", "is inside")]


@pytest.fixture(scope="module")
def import_runs(tmp_path_factory):
    """jointvae-import-torch on each bad synthetic checkpoint below, all in one process (one TensorFlow and torch
    import, not one per case): {case: (Run, the case's own folder)}; for "over:OUTPUT" cases and "sibling" also
    "before:OUTPUT" and "before:sibling", a snapshot of tmp/runs taken before the run.

    Each run goes through absl's app.run and import_torch's main as `python -m` does; the binary's own process
    exit on bad input is tested by test_bad_input_fails_with_one_line_naming_the_problem."""
    cases, folders, extra = {}, {}, {}
    for output, _ in OVER_THE_CHECKPOINT:
        folders[f"over:{output}"] = tmp_path_factory.mktemp("over")
        reference = _reference_in(folders[f"over:{output}"])
        extra[f"before:{output}"] = _tree(reference.parent)
        cases[f"over:{output}"] = [f"--checkpoint_dir={reference}",
                                   f"--model_dir={os.path.normpath(reference / output)}", "--overwrite"]
    folders["random_bytes"] = tmp_path_factory.mktemp("random_bytes")
    reference = _reference_in(folders["random_bytes"])
    (reference / "model.pt").write_bytes(random.Random(0).randbytes(4096))
    cases["random_bytes"] = [f"--checkpoint_dir={reference}", f"--model_dir={reference.parent / 'imported'}"]
    folders["truncated"] = tmp_path_factory.mktemp("truncated")
    reference = _reference_in(folders["truncated"])
    content = (reference / "model.pt").read_bytes()
    (reference / "model.pt").write_bytes(content[:5000])
    cases["truncated"] = [f"--checkpoint_dir={reference}", f"--model_dir={reference.parent / 'imported'}"]
    folders["sibling"] = tmp_path_factory.mktemp("sibling")
    reference = _reference_in(folders["sibling"])
    extra["before:sibling"] = _tree(reference.parent)
    cases["sibling"] = [f"--checkpoint_dir={reference}", f"--model_dir={reference.parent / 'sibling'}", "--overwrite"]
    results = run_in_one_process("jointvae_tf.compat.import_torch", cases, cwd=ROOT, env=_env(), timeout=300)
    return {**{case: (results[case], folders[case]) for case in cases}, **extra}


@pytest.mark.parametrize("output, relation", OVER_THE_CHECKPOINT,
                         ids=["the_checkpoint_dir", "its_parent", "inside_it"])
def test_overwrite_refuses_a_model_dir_over_the_checkpoint(import_runs, output, relation):
    result, tmp_path = import_runs[f"over:{output}"]
    before = import_runs[f"before:{output}"]
    reference = tmp_path / "runs" / "reference"
    runs = reference.parent
    model_dir = os.path.normpath(reference / output)
    assert result.returncode == 1
    assert _error_line(result) == (
        f"jointvae-import-torch: error: --model_dir {model_dir} {relation} --checkpoint_dir {reference}: "
        "an output may not be, contain or sit inside an input, since replacing it would delete the input"
    )
    assert "Traceback" not in result.stderr
    assert _tree(runs) == before  # model.pt, specs.json, the sibling run and the notes, byte for byte
    assert sorted(os.listdir(runs.parent)) == ["runs"]


def test_symlinks_do_not_fool_the_check(reference, tmp_path):
    from jointvae_tf.compat import import_torch

    (tmp_path / "link").symlink_to(reference)
    before = _tree(reference)
    for model_dir in (tmp_path / "link", f"{reference}/../reference"):
        with pytest.raises(ValueError, match=f"is --checkpoint_dir {reference}: an output may not be"):
            import_torch.import_checkpoint(str(reference), str(model_dir), overwrite=True)
    assert _tree(reference) == before


def test_overwrite_replaces_only_an_earlier_import(import_runs, reference):
    # Another training run's model_dir (no "imported_from" in its config.json) is not the import's to delete.
    result, tmp_path = import_runs["sibling"]
    runs = tmp_path / "runs"
    assert result.returncode == 1
    assert _error_line(result) == (
        f"jointvae-import-torch: error: --model_dir {runs / 'sibling'} holds files that were not written by "
        "jointvae-import-torch (config.json): --overwrite replaces only an earlier import and will not delete them; "
        "choose another --model_dir"
    )
    assert _tree(runs) == import_runs["before:sibling"]
    # An earlier import is.
    runs = reference.parent
    model_dir = runs / "imported"
    flags = [f"--checkpoint_dir={reference}", f"--model_dir={model_dir}", "--overwrite"]
    assert _import(*flags).returncode == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert config["imported_from"]["checkpoint_dir"] == str(reference)
    (model_dir / "config.json").write_text(json.dumps(dict(config, note="edited")))
    result = _import(*flags)
    assert result.returncode == 0, result.stderr
    assert "note" not in json.loads((model_dir / "config.json").read_text())
    assert sorted(os.listdir(runs)) == ["imported", "notes.txt", "reference", "sibling"]


def test_a_model_pt_of_random_bytes_fails_with_one_line_and_no_unsafe_advice(import_runs):
    result, tmp_path = import_runs["random_bytes"]
    reference = tmp_path / "runs" / "reference"
    model_dir = reference.parent / "imported"
    assert result.returncode == 1
    assert _error_line(result) == (
        f"jointvae-import-torch: error: {reference / 'model.pt'} is not a PyTorch state_dict that loads with "
        "weights_only=True (truncated, corrupt, or not a checkpoint)"
    )
    assert "Traceback" not in result.stderr and "weights_only=False" not in result.stderr
    assert not model_dir.exists()


def test_a_truncated_checkpoint_fails_with_one_line(import_runs):
    """A download cut short: torch raises a bare OSError for this one, which used to end in a traceback."""
    result, _ = import_runs["truncated"]
    assert result.returncode == 1
    assert "model.pt is not a PyTorch state_dict that loads with weights_only=True" in _error_line(result)
    assert "Traceback" not in result.stderr
