"""jointvae_tf.pretrained: packing a trained model_dir into an entry, and reading entries back.

A tiny model trained two steps is packed into a temporary root; the functions are pointed at it
with their `root` argument and with JOINTVAE_PRETRAINED_DIR. The last test loads every model
really shipped in the package (none until the project's trained models land).
"""

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

import jointvae_tf as jv
from jointvae_tf import evaluation, pretrained
from jointvae_tf.training import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_CONFIG = {"dataset": "mnist", "preset": "mnist", "batch_size": 32, "learning_rate": 5e-4, "seed": 0,
              "model_dir": "/somewhere/on/the/training/machine"}
LATENTS = np.eye(7, dtype="float32")[[0, 3, 4, 6]] + np.eye(7, dtype="float32")[[4, 4, 5, 4]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, model_dir): a JointVAE (32x32x1, cont=3, disc=4) trained 2 steps, saved as a training run would."""
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
    model.compile()
    images = (np.random.RandomState(0).rand(64, 32, 32, 1) > 0.5).astype("float32")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    model_dir = str(tmp_path_factory.mktemp("run") / "model_dir")
    checkpoints.save_model_dir(model, model_dir, RUN_CONFIG)
    return model, model_dir


@pytest.fixture(scope="module")
def root(trained, tmp_path_factory):
    """A pretrained root holding one entry, "tiny", packed from the trained model_dir."""
    root = str(tmp_path_factory.mktemp("pretrained"))
    entry = pretrained.pack(trained[1], "tiny", dest_root=root, card={"metrics": {"discrete_accuracy": 0.5}})
    assert entry == os.path.join(root, "tiny")
    return root


def test_pack_writes_the_three_files_and_nothing_else(root):
    assert sorted(os.listdir(root)) == ["tiny"]  # no staging folder left
    assert sorted(os.listdir(os.path.join(root, "tiny"))) == ["card.json", "config.json", "model.keras"]


def test_available_path_info(root, monkeypatch):
    assert pretrained.available(root) == ["tiny"]
    assert pretrained.path("tiny", root) == os.path.join(root, "tiny", "model.keras")
    card = pretrained.info("tiny", root)
    assert card["dataset"] == "mnist" and card["preset"] == "mnist" and card["step"] == 2 and card["seed"] == 0
    assert card["metrics"] == {"discrete_accuracy": 0.5}
    assert card["recipe"]["batch_size"] == 32 and card["recipe"]["latent_spec"] == {"cont": 3, "disc": [4]}
    config = json.loads(open(os.path.join(root, "tiny", "config.json")).read())
    assert config["dataset"] == "mnist" and config["step"] == 2 and "model_dir" not in config  # no machine paths
    # The environment variable points every function at another root.
    monkeypatch.setenv(pretrained.ENV_VAR, root)
    assert pretrained.available() == ["tiny"] and jv.pretrained.info("tiny")["step"] == 2


def _rounded_to_float16(model):
    """A copy of `model` whose weights are rounded to float16 (held in float32 variables)."""
    copy = jv.JointVAE.from_config(model.get_config())
    copy.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
    return copy


def test_the_loaded_model_decodes_as_the_trained_one_with_float16_weights(trained, root):
    model, _ = trained
    loaded = pretrained.load("tiny", root)
    assert isinstance(loaded, jv.JointVAE) and getattr(loaded, "optimizer", None) is None
    assert {w.dtype for w in loaded.weights} == {"float32"}
    rounded = _rounded_to_float16(model)
    for got, want, exact in zip(loaded.get_weights(), rounded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, exact, rtol=2 ** -11, atol=6e-8)  # float16's spacing
    np.testing.assert_array_equal(loaded.decode(LATENTS), rounded.decode(LATENTS))
    assert pretrained.info("tiny", root)["weights_dtype"] == "float16"


def test_float32_entries_keep_the_weights_exactly(trained, tmp_path):
    model, model_dir = trained
    pretrained.pack(model_dir, "exact", dest_root=str(tmp_path), weights_dtype="float32")
    loaded = pretrained.load("exact", str(tmp_path))
    np.testing.assert_array_equal(loaded.decode(LATENTS), model.decode(LATENTS))
    assert pretrained.info("exact", str(tmp_path))["weights_dtype"] == "float32"
    path = pretrained.path("exact", str(tmp_path))
    assert os.path.getsize(path) < 1.1 * 4 * model.count_params() + 100_000


def test_the_keras_file_is_weights_only_in_float16(trained, root):
    model, _ = trained
    path = pretrained.path("tiny", root)
    with zipfile.ZipFile(path) as archive:
        assert not json.loads(archive.read("config.json")).get("compile_config")
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
            assert "optimizer" not in weights
            arrays = []
            weights.visititems(lambda _, item: arrays.append(item) if isinstance(item, h5py.Dataset) else None)
            assert arrays and {a.dtype for a in arrays} == {np.dtype("float16")}
            assert sum(a.size for a in arrays) == model.count_params()
    # Two bytes a weight and a little structure; float32 would double it, Adam's two moments triple that.
    assert os.path.getsize(path) < 1.1 * 2 * model.count_params() + 100_000
    assert pretrained.info("tiny", root)["num_parameters"] == model.count_params()


def test_evaluation_and_the_export_binary_take_the_path(trained, root, tmp_path):
    model, _ = trained
    path = pretrained.path("tiny", root)
    loaded, info = evaluation.load_model(path)
    assert info["kind"] == "keras" and info["dataset"] == "mnist"
    np.testing.assert_array_equal(loaded.decode(LATENTS), _rounded_to_float16(model).decode(LATENTS))
    output_dir = tmp_path / "export"
    result = subprocess.run(
        [sys.executable, "-m", "export", f"--model_dir={path}", f"--output_dir={output_dir}", "--variants=float32",
         "--fidelity_samples=20", "--latency_invokes=5"],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT), capture_output=True,
        text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((output_dir / "export_report.json").read_text())["passed"] is True


def test_unknown_names_are_one_line_naming_the_available_ones(root, tmp_path):
    with pytest.raises(ValueError, match=r"^no pretrained model named 'mnits' in .*: available: tiny$"):
        pretrained.load("mnits", root)
    with pytest.raises(ValueError, match="available: none$"):
        pretrained.info("tiny", str(tmp_path / "empty"))
    assert pretrained.available(str(tmp_path / "missing")) == []


def test_pack_refuses_to_overwrite_unless_asked(trained, root, tmp_path):
    _, model_dir = trained
    other = str(tmp_path / "root")
    shutil.copytree(root, other)
    with pytest.raises(ValueError, match="pretrained model tiny already exists in .*: pass overwrite=True"):
        pretrained.pack(model_dir, "tiny", dest_root=other)
    assert pretrained.info("tiny", other)["metrics"] == {"discrete_accuracy": 0.5}  # untouched
    pretrained.pack(model_dir, "tiny", dest_root=other, card={"metrics": {}}, overwrite=True)
    assert pretrained.info("tiny", other)["metrics"] == {}
    assert sorted(os.listdir(other)) == ["tiny"]
    # A folder holding anything else is never replaced.
    (tmp_path / "root" / "tiny" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files a pretrained entry does not \(notes.txt\)"):
        pretrained.pack(model_dir, "tiny", dest_root=other, overwrite=True)


def test_pack_bad_input(trained, tmp_path):
    _, model_dir = trained
    with pytest.raises(ValueError, match="pretrained model name 'My Model' is not allowed"):
        pretrained.pack(model_dir, "My Model", dest_root=str(tmp_path))
    with pytest.raises(ValueError, match=r"dataset 'idx:/data/mnist' of .* cannot be shipped: pass dataset="):
        pretrained.pack(model_dir, "x", dest_root=str(tmp_path), dataset="idx:/data/mnist")
    with pytest.raises(ValueError, match="pretrained entry .* is inside model_dir"):
        pretrained.pack(model_dir, "x", dest_root=model_dir)
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        pretrained.pack(str(tmp_path), "x", dest_root=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="^weights_dtype 'bfloat16' is not allowed: use one of float16, float32$"):
        pretrained.pack(model_dir, "x", dest_root=str(tmp_path), weights_dtype="bfloat16")
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "x")


def test_files_follow_the_umask(trained, tmp_path):
    old = os.umask(0o027)
    try:
        entry = pretrained.pack(trained[1], "tiny", dest_root=str(tmp_path))
    finally:
        os.umask(old)
    assert os.stat(entry).st_mode & 0o777 == 0o750
    for name in pretrained.ENTRY_FILES:
        assert os.stat(os.path.join(entry, name)).st_mode & 0o777 == 0o640, name


def test_setup_py_ships_the_entries(tmp_path):
    """setup.py's build_py (what a wheel is made of) copies an entry's files: the package data is declared."""
    source = tmp_path / "src"
    for name in ("setup.py", "README.md", "jointvae_tf/__init__.py", "jointvae_tf/pretrained/__init__.py"):
        os.makedirs(source / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), source / name)
    for name in pretrained.ENTRY_FILES:
        os.makedirs(source / "jointvae_tf/pretrained/tiny", exist_ok=True)
        (source / "jointvae_tf/pretrained/tiny" / name).write_text("{}")
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_py", f"--build-lib={tmp_path / 'lib'}"],
                            cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    shipped = sorted(os.listdir(tmp_path / "lib/jointvae_tf/pretrained/tiny"))
    assert shipped == sorted(pretrained.ENTRY_FILES)


def test_the_package_holds_no_partial_entry():
    """Every folder beside pretrained/__init__.py is a whole entry (a missing file would hide it from available())."""
    root = pretrained.default_root()
    folders = {n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and n != "__pycache__"}
    assert folders == set(pretrained.available(root))


# One case per shipped model; with none shipped yet, a single "none" case (an empty parameter set would be
# a skip, which CI counts as a failure) that checks only that available() agrees.
@pytest.mark.parametrize("name", pretrained.available(pretrained.default_root()) or [None])
def test_every_shipped_model_loads(name):
    root = pretrained.default_root()
    if name is None:
        assert pretrained.available(root) == []
        return
    model = pretrained.load(name, root)
    card = pretrained.info(name, root)
    assert card["name"] == name and card["dataset"] and card["step"] and "metrics" in card
    latent = jv.viz.default_base(model.latent_spec)[None]
    images = model.decode(latent).numpy()
    assert images.shape == (1, *model.image_shape) and np.isfinite(images).all()
    assert evaluation.load_model(pretrained.path(name, root))[1]["dataset"] == card["dataset"]
