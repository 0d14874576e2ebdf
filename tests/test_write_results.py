"""bench/write_results.py: results/<name>/ from fabricated reproduction runs, the label-free pick, --ship."""

import importlib.util
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import jointvae_tf as jv
from jointvae_tf import pretrained
from jointvae_tf.training import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "write_results.py")
_spec = importlib.util.spec_from_file_location("write_results", SCRIPT)
write_results = importlib.util.module_from_spec(_spec)
sys.modules["write_results"] = write_results  # dataclasses look their module up there
_spec.loader.exec_module(write_results)

PAPER = {"discrete_accuracy": 0.887, "note": "Dupont 2018, Table 1"}
# seed: (final discrete accuracy, final test reconstruction loss). Seed 0 has the best accuracy but not
# the lowest held-out loss (recon + 5 + 2): seed 1 must be picked. Seed 2 predates the per-latent KL and
# has no "final" (its last epoch row counts).
RUNS = {0: (0.90, 200.0), 1: (0.60, 150.0), 2: (0.70, 180.0)}
# The final prototype NLL of seeds 0 and 1 (seed 2 predates it): by it, seed 0 is the pick.
PROTOTYPE_NLL = {0: 280.0, 1: 300.0}


def _rows(accuracy, recon, per_latent):
    rows = []
    for epoch in (1, 2, 3):
        row = {"epoch": epoch, "step": 10 * epoch, "discrete_accuracy": accuracy - 0.1 * (3 - epoch),
               "test_reconstruction_loss": recon + 30 * (3 - epoch), "test_kl_continuous": 5.0,
               "test_kl_discrete": 2.0, "train_cpu_seconds_total": 60.0 * epoch}
        if per_latent:
            row.update(test_kl_continuous_per_dim=[3.0, 1.5, 0.5], test_kl_discrete_per_latent=[2.0])
        rows.append(row)
    return rows


def _write_idx(path, array):
    """`array` (uint8) as an IDX file: magic 0x0000 08 ndim, big-endian sizes, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _tiny_mnist(folder):
    """An MNIST-like IDX test split of 40 random 28x28 digits: what the shipped model is measured on."""
    rng = np.random.RandomState(1)
    os.makedirs(folder)
    _write_idx(os.path.join(folder, "t10k-images-idx3-ubyte"), (rng.rand(40, 28, 28) > 0.7) * 255)
    _write_idx(os.path.join(folder, "t10k-labels-idx1-ubyte"), np.arange(40) % 10)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three reproduce-style model_dirs (seeds 0, 1, 2) of one tiny model trained 2 steps."""
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
    model.compile()
    model.fit((np.random.RandomState(0).rand(64, 32, 32, 1) > 0.5).astype("float32"), batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("runs")
    data = "idx:" + _tiny_mnist(str(folder / "mnist_data"))
    dirs = []
    for seed, (accuracy, recon) in RUNS.items():
        model_dir = str(folder / f"mnist_s{seed}")
        checkpoints.save_model_dir(model, model_dir, {"dataset": "idx:/data/mnist", "preset": "mnist", "seed": seed,
                                                      "batch_size": 32, "learning_rate": 5e-4, "steps_per_epoch": 10})
        rows = _rows(accuracy, recon, per_latent=seed != 2)
        report = {"dataset": "mnist", "data": data, "seed": seed, "is_preset": True, "paper": PAPER,
                  "per_epoch": rows, "final_metric_sizes": {}}
        if seed != 2:
            report["final"] = {**rows[-1], "step": 30, "test_prototype_nll": PROTOTYPE_NLL[seed]}
            report["reference"] = {"discrete_accuracy": 0.8872, "test_reconstruction_loss": 140.0,
                                   "model": "/machine/reference_models/mnist", "kind": "pytorch_reference"}
        checkpoints.write_json_atomic(os.path.join(model_dir, "reproduce.json"), report)
        dirs.append(model_dir)
    return dirs


@pytest.fixture(scope="module")
def written(runs, tmp_path_factory):
    """write_results on the three runs with --ship into a temporary pretrained root: (out_dir, root, summary)."""
    results_dir = str(tmp_path_factory.mktemp("results"))
    root = str(tmp_path_factory.mktemp("pretrained"))
    summary = write_results.write_results(runs, "mnist", results_dir, ship=True, pretrained_root=root)
    return os.path.join(results_dir, "mnist"), root, summary


def test_every_file_is_written_and_the_pictures_decode(written):
    out_dir, _, _ = written
    names = sorted(os.listdir(out_dir))
    assert names == ["README.md", "curves.png", "metrics.json", "traverse_continuous.png", "traverse_discrete_0.png"]
    for name in names:
        if name.endswith(".png"):
            with Image.open(os.path.join(out_dir, name)) as image:
                image.load()
                assert image.width > 50 and image.height > 50, name
    with Image.open(os.path.join(out_dir, "traverse_discrete_0.png")) as image:
        assert image.size == (4 * 34 + 2, 8 * 34 + 2)  # 4 categories across, 8 bases down


def test_the_pick_is_the_lowest_held_out_loss_not_the_best_accuracy(written):
    out_dir, _, _ = written
    metrics = json.loads(open(os.path.join(out_dir, "metrics.json")).read())
    assert metrics["pick"]["seed"] == 1 and metrics["pick"]["run"] == "mnist_s1"
    assert metrics["pick"]["held_out_loss"] == pytest.approx(157.0)
    best_accuracy = max(metrics["runs"], key=lambda run: run["metrics"]["discrete_accuracy"])
    assert best_accuracy["seed"] == 0 != metrics["pick"]["seed"]
    assert "without labels" in metrics["pick"]["description"]
    assert metrics["discrete_accuracy"] == {"median": 0.70, "min": 0.60, "max": 0.90, "seeds": 3}
    assert [run["measured"] for run in metrics["runs"]] == ["final", "final", "last_epoch"]
    assert [run["seed"] for run in metrics["runs"]] == [0, 1, 2]
    assert metrics["paper"] == PAPER and metrics["main_metric"] == "discrete_accuracy"
    assert metrics["reference"]["discrete_accuracy"] == 0.8872 and metrics["reference"]["model"] == "mnist"
    assert metrics["recipe"]["preset"] == "mnist" and metrics["recipe"]["batch_size"] == 32


def test_the_model_card(written):
    out_dir, _, _ = written
    card = open(os.path.join(out_dir, "README.md")).read()
    assert "| 1 (picked) | mnist_s1 | 30 | 0.6 |" in card
    assert "| 2 | mnist_s2 | 30 | 0.7 |" in card and "last_epoch" in card
    assert "median over 3 seeds 0.7, min 0.6, max 0.9" in card and "paper: 0.887" in card
    assert "by `--pick=held_out_loss`: lowest final held-out negative ELBO" in card
    assert "- shipped: seed 1, 30 steps, 3 training CPU minutes" in card
    assert "batch 32" in card and "learning rate 0.0005" in card
    assert "![traverse_continuous](traverse_continuous.png)" in card


def test_the_prototype_nll_pick_takes_the_lowest_and_names_a_run_without_it(runs, tmp_path):
    summary = write_results.write_results(runs[:2], "mnist", str(tmp_path), pick="prototype_nll")
    assert summary["pick"]["criterion"] == "prototype_nll" and summary["pick"]["seed"] == 0
    assert summary["pick"]["value"] == pytest.approx(280.0)
    assert summary["pick"]["held_out_loss"] == pytest.approx(207.0)  # not the lower held-out loss (seed 1)
    card = open(os.path.join(str(tmp_path), "mnist", "README.md")).read()
    assert "by `--pick=prototype_nll`: lowest final prototype NLL" in card
    assert "Its prototype NLL: 280 nats." in card
    assert "- picked (not shipped): seed 0, 30 steps" in card
    assert "| 0 (picked) | mnist_s0 | 30 | 0.9 | 200 | 5 | 2 | 207 | 280 |" in card
    with pytest.raises(ValueError, match=r"mnist_s2: reproduce.json last_epoch has no test_prototype_nll: "
                                         r"--pick=prototype_nll needs it"):
        write_results.write_results(runs, "mnist", str(tmp_path / "other"), pick="prototype_nll")
    assert not os.path.exists(tmp_path / "other")


def test_ship_packs_the_picked_run(written, runs):
    _, root, summary = written
    assert pretrained.available(root) == ["mnist"]
    card = pretrained.info("mnist", root)
    assert card["pick"]["seed"] == 1 and card["seed"] == 1 and card["dataset"] == "mnist"
    assert card["metrics"]["discrete_accuracy"] == 0.60 and card["seeds"]["median"] == 0.70
    picked = checkpoints.restore_model(runs[1])
    latent = jv.viz.default_base(picked.latent_spec)[None]
    shipped = pretrained.load("mnist", root)
    np.testing.assert_allclose(shipped.decode(latent), picked.decode(latent), atol=2e-3)  # float16 weights
    assert summary["shipped"] == os.path.join(root, "mnist")  # outside the repository: the full path
    assert card["weights_dtype"] == summary["weights_dtype"] == "float16"


def test_the_shipped_file_is_measured_again(written, runs):
    """The card's shipped_metrics are the shipped (float16) weights' own, on the picked run's data and seed."""
    out_dir, root, summary = written
    from jointvae_tf import evaluation

    card = pretrained.info("mnist", root)
    data = json.loads(open(os.path.join(runs[1], "reproduce.json")).read())["data"]
    expected = evaluation.measurement_row(evaluation.evaluate(
        pretrained.load("mnist", root), data, seed=1, metrics=write_results.FINAL_METRICS["mnist"]))
    assert card["shipped_metrics"] == summary["shipped_metrics"] == expected  # deterministic: same seed, same file
    assert set(expected) >= {"discrete_accuracy", "test_reconstruction_loss", "test_kl_continuous"}
    assert expected["num_evaluation_images"] == 40
    # Different from the fabricated training-run figures: these were measured, not copied.
    assert card["shipped_metrics"]["test_reconstruction_loss"] != card["metrics"]["test_reconstruction_loss"]
    assert "measured again on the shipped file: discrete_accuracy" in open(os.path.join(out_dir, "README.md")).read()


def test_bad_inputs_are_one_line(runs, tmp_path, monkeypatch):
    results = str(tmp_path / "results")
    with pytest.raises(ValueError, match=r"run .*nowhere not found: --runs takes model_dirs"):
        write_results.write_results([runs[0], str(tmp_path / "nowhere")], "mnist", results)
    with pytest.raises(ValueError, match=r"--pick='accuracy' is not a criterion: allowed: held_out_loss, "
                                         r"prototype_nll$"):
        write_results.write_results(runs, "mnist", results, pick="accuracy")
    with pytest.raises(ValueError, match=r"both have seed 0: give one run per seed"):
        write_results.write_results([runs[0], runs[0]], "mnist", results)
    with pytest.raises(ValueError, match="pretrained model name 'MNIST!' is not allowed"):
        write_results.write_results(runs, "MNIST!", results)
    with pytest.raises(ValueError, match="results folder .* is inside run"):
        write_results.write_results(runs, "mnist", runs[0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ValueError, match=r'^matplotlib is not installed: pip install "jointvae-tf\[results\]"'):
        write_results.write_results(runs, "mnist", results)
    assert not os.path.exists(results)


def test_existing_results_and_entries_need_overwrite(written, runs, tmp_path):
    out_dir, root, _ = written
    with pytest.raises(ValueError, match="exists and is not empty: pass --overwrite"):
        write_results.write_results(runs, "mnist", os.path.dirname(out_dir))
    with pytest.raises(ValueError, match="pretrained model mnist already exists in .*: pass overwrite=True"):
        write_results.write_results(runs, "mnist", str(tmp_path), ship=True, pretrained_root=root)
    assert os.listdir(tmp_path) == []  # refused before writing any result


def test_the_binary_exits_1_with_one_line(runs, tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, "--name=mnist", f"--runs={runs[0]},{tmp_path / 'missing'}",
         f"--results_dir={tmp_path}"], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"write_results: error: run {tmp_path / 'missing'} not found: --runs takes model_dirs written by "
        "bench/reproduce.py")
    assert os.listdir(tmp_path) == []
