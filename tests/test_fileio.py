import json
import os
import stat
import subprocess
import sys

import pytest

from jointvae_tf import fileio


def test_writes_complete_files_with_usual_permissions(tmp_path):
    path = fileio.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.load(open(path)) == {"a": [1, 2], "b": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    fileio.write_bytes(path, b"new")
    assert open(path, "rb").read() == b"new"
    assert os.listdir(tmp_path / "a") == ["x.json"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_strict_json_refuses_non_finite_values_and_keeps_the_old_file(tmp_path, bad):
    path = fileio.write_json(tmp_path / "config.json", {"learning_rate": 5e-4}, allow_nan=False)
    with pytest.raises(ValueError, match=r"cannot write .*config.json: Out of range float values"):
        fileio.write_json(path, {"learning_rate": bad}, allow_nan=False)
    assert json.load(open(path)) == {"learning_rate": 5e-4}
    assert os.listdir(tmp_path) == ["config.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(path) as tmp:
            assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "wb").write(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]


# --------------------------------------------------------------------------- permissions follow the umask
@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    """Runs the test under the given umask (restored after)."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_follow_the_umask(tmp_path, umask):
    path = fileio.write_bytes(tmp_path / "x.bin", b"data")
    assert _mode(path) == 0o666 & ~umask  # 0644 under 022, 0600 under 077
    folder = fileio.make_unique_dir(tmp_path, "staging-")
    assert os.path.basename(folder).startswith("staging-") and os.path.dirname(folder) == str(tmp_path)
    assert _mode(folder) == 0o777 & ~umask  # 0755 under 022 (tempfile.mkdtemp: always 0700)
    assert fileio.make_unique_dir(tmp_path, "staging-") != folder


def test_a_writer_that_replaces_the_temporary_file_still_publishes_the_usual_mode(tmp_path, umask):
    target = tmp_path / "model.keras"
    with fileio.atomic_path(target) as tmp:
        private = tmp_path / "private"
        private.write_bytes(b"content")
        os.chmod(private, 0o600)
        os.replace(private, tmp)  # as a writer that saves elsewhere and renames onto the name it was given
    assert target.read_bytes() == b"content" and _mode(target) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["model.keras"]


def test_the_implementation_imports_only_the_standard_library():
    """export.decode_tflite shares it on devices without TensorFlow; jointvae_tf.fileio is the same functions."""
    code = ("import sys; before = set(sys.modules); import export.fileio; "
            "print(sorted(m for m in set(sys.modules) - before "
            "if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'export'))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    import export.fileio

    assert fileio.atomic_path is export.fileio.atomic_path


# --------------------------------------------------------------------------- outputs kept off inputs
@pytest.fixture
def tree(tmp_path):
    """runs/mnist (a model_dir), runs/mnist2 (a sibling run) and runs/notes.txt."""
    (tmp_path / "runs" / "mnist" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "mnist" / "config.json").write_text("{}")
    (tmp_path / "runs" / "mnist2").mkdir()
    (tmp_path / "runs" / "notes.txt").write_text("mine")
    return tmp_path


@pytest.mark.parametrize(
    "output, relation",
    [
        ("runs/mnist", "is"),
        ("runs/mnist/", "is"),
        ("runs/mnist2/../mnist", "is"),
        ("runs", "contains"),
        (".", "contains"),
        ("runs/mnist/export", "is inside"),
        ("runs/mnist/checkpoints/new", "is inside"),
    ],
)
def test_an_output_that_is_contains_or_sits_inside_an_input_is_refused(tree, monkeypatch, output, relation):
    monkeypatch.chdir(tree)
    with pytest.raises(ValueError) as raised:
        fileio.check_output_location(output, {"--model_dir": "runs/mnist"}, "--output_dir")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"--output_dir {output}")
    assert f" {relation} --model_dir runs/mnist" in message
    assert "an output may not be, contain or sit inside an input" in message


def test_symlinks_do_not_hide_an_overlap(tree):
    link = tree / "link"
    link.symlink_to(tree / "runs")
    with pytest.raises(ValueError, match=rf"output {link} \(real path {tree / 'runs'}\) contains input"):
        fileio.check_output_location(link, {"input": tree / "runs" / "mnist"})
    with pytest.raises(ValueError, match=r"output .* is input .*link/mnist \(real path"):
        fileio.check_output_location(tree / "runs" / "mnist", {"input": link / "mnist"})


def test_a_model_file_inside_the_output_is_refused(tree):
    model = tree / "runs" / "model.keras"
    model.write_bytes(b"keras")
    with pytest.raises(ValueError, match="output .*runs contains model .*runs/model.keras"):
        fileio.check_output_location(tree / "runs", {"model": model})
    with pytest.raises(ValueError, match="is model"):
        fileio.check_output_location(model, {"model": model})


@pytest.mark.parametrize("output", ["runs/mnist2", "runs/mnist_export", "runs/mnis", "elsewhere/new", "runs/mnist2/x"])
def test_outputs_beside_the_inputs_are_allowed(tree, monkeypatch, output):
    monkeypatch.chdir(tree)
    fileio.check_output_location(output, {"a": "runs/mnist", "b": "runs/notes.txt"})


def test_every_input_is_checked(tree):
    with pytest.raises(ValueError, match="contains b "):
        fileio.check_output_location(tree / "runs", {"a": tree / "elsewhere", "b": tree / "runs" / "mnist2"})
