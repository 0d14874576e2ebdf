"""The training library in-process, on a small in-memory dataset (the binary is tested in test_train.py)."""

import gc
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import jointvae_tf as jv
from jointvae_tf.training import train_lib
from jointvae_tf.training import callbacks, checkpoints


def _use_small_data(monkeypatch):
    """Replaces the dataset with 160 random binary 64x64 images (so these tests need no data files)."""
    images = (np.random.RandomState(0).rand(160, 64, 64, 1) > 0.5).astype("float32")

    def make_dataset(config, global_batch, start=None):
        epoch = tf.data.Dataset.from_tensor_slices(images).batch(global_batch, drop_remainder=True)
        return epoch if start is None else epoch.repeat().skip(start)

    monkeypatch.setattr(train_lib, "make_dataset", make_dataset)
    return images


@pytest.fixture
def small_data(monkeypatch):
    return _use_small_data(monkeypatch)


def _config(tmp_path, **overrides):
    values = dict(model_dir=str(tmp_path / "run"), steps=25, batch_size=16, checkpoint_every=10, log_every=5,
                  image_every=10, verbose=0, latent_spec="cont=2,disc=3", strategy="default")
    values.update(overrides)
    return train_lib.TrainConfig(**values)


def test_train_resolves_the_preset_and_writes_the_model_dir(tmp_path, small_data):
    summary = train_lib.train(_config(tmp_path))
    assert summary["step"] == 25 and summary["checkpoint"].endswith("ckpt-25")
    config = checkpoints.read_config(summary["model_dir"])
    assert config["model"]["disc_capacity"] == [0.0, 1.1, 300000, 150.0]
    assert config["total_steps"] == 25 and config["steps_per_epoch"] == 10
    assert set(os.listdir(os.path.join(summary["model_dir"], "images"))) >= {
        "traverse_continuous.png", "traverse_discrete_0.png", "samples.png", "reconstructions.png"}
    restored = checkpoints.restore_model(summary["model_dir"])
    np.testing.assert_allclose(restored.reconstruct(small_data[:4]), summary["model"].reconstruct(small_data[:4]))
    # Scalars every log_every=5 global steps, pictures every image_every=10 and at the end.
    scalars = _summary_steps(summary["model_dir"], "train")
    for tag in ("kl_continuous/z0", "kl_continuous/z1", "kl_discrete/c0", "reconstruction_loss",
                "capacity_continuous", "kl_discrete", "loss"):
        assert scalars.get(tag) == [5, 10, 15, 20, 25], tag
    assert scalars["epoch_loss"] == [0, 1, 2]
    assert _summary_steps(summary["model_dir"], "images")["samples"] == [10, 20, 25]


def _summary_steps(model_dir, run):
    """{tag: sorted global steps} of the TensorBoard events in model_dir/logs/run."""
    steps = {}
    folder = os.path.join(model_dir, "logs", run)
    for event_file in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, event_file)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return {tag: sorted(s) for tag, s in steps.items()}


CAPACITY = "0,10,100,30"


@pytest.fixture(scope="module")
def ten_steps(tmp_path_factory):
    """The model_dir of a 10-step run on the small data (cont_capacity=CAPACITY); tests resume copies of it."""
    tmp_path = tmp_path_factory.mktemp("ten_steps")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use_small_data(monkeypatch)
        assert train_lib.train(_config(tmp_path, steps=10, cont_capacity=CAPACITY))["step"] == 10
    return str(tmp_path / "run")


def test_resume_continues_the_step_and_the_capacity_schedule(ten_steps, tmp_path, small_data):
    shutil.copytree(ten_steps, str(tmp_path / "run"))
    summary = train_lib.train(_config(tmp_path, steps=20, cont_capacity=CAPACITY))
    assert summary["step"] == 20
    # Steps 11..20 ran after the restore: the mean of C(t) over them is 10 * 15.5 / 100.
    assert summary["logs"]["capacity_continuous"] == pytest.approx(1.55, rel=1e-5)


def test_a_resumed_run_reads_the_data_of_the_uninterrupted_one_and_ends_with_its_weights(tmp_path):
    """On the real pipeline (procedural dSprites): 6 steps in one go = 4 steps, then a resume to 6."""
    config = dict(dataset="dsprites", steps_per_epoch=3, checkpoint_every=1, image_every=100, batch_size=8,
                  latent_spec="cont=2,disc=2")
    whole = train_lib.train(_config(tmp_path / "whole", steps=6, **config))["model"]
    train_lib.train(_config(tmp_path / "parts", steps=4, **config))
    resumed = train_lib.train(_config(tmp_path / "parts", steps=6, **config))["model"]
    for got, want in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_a_run_reads_its_data_once(tmp_path, monkeypatch):
    """One epoch (size, example pictures) and the stream come from one read of the file."""
    from jointvae_tf.data import files

    path = tmp_path / "digits.npz"
    np.savez(path, x_train=np.random.RandomState(0).randint(0, 256, (48, 28, 28), dtype=np.uint8))
    reads = []
    original = files.load_npz
    monkeypatch.setattr(files, "load_npz", lambda *args: reads.append(args) or original(*args))
    summary = train_lib.train(_config(tmp_path, dataset=f"npz:{path}", steps=4, checkpoint_every=2))
    assert summary["step"] == 4 and len(reads) == 1


def _live_iterators() -> int:
    from tensorflow.python.data.ops import iterator_ops

    return sum(isinstance(o, iterator_ops.OwnedIterator) for o in gc.get_objects())


def test_train_leaves_no_input_iterator_for_interpreter_teardown(tmp_path):
    """fit's iterator sits in a reference cycle; destroyed at exit while its thread is in numpy_function, it hangs."""
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=np.random.RandomState(0).randint(0, 256, (48, 28, 28), dtype=np.uint8))
    gc.collect()
    before = _live_iterators()
    gc.disable()  # as in a long run, where the cycle has reached a generation that is seldom collected
    try:
        summary = train_lib.train(_config(tmp_path, dataset=f"npz:{path}", steps=4, checkpoint_every=2))
        assert summary["step"] == 4
        assert _live_iterators() == before
    finally:
        gc.enable()


def test_resuming_on_another_dataset_warns_and_records_it(ten_steps, tmp_path, small_data, caplog):
    shutil.copytree(ten_steps, str(tmp_path / "run"))
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        train_lib.train(_config(tmp_path, steps=20, cont_capacity=CAPACITY, dataset="npz:/data/other_sprites.npz"))
    assert "resuming at step 10 with dataset=npz:/data/other_sprites.npz" in caplog.text
    config = checkpoints.read_config(str(tmp_path / "run"))
    assert config["dataset"] == "npz:/data/other_sprites.npz"
    assert config["history"][0]["step"] == 10
    assert config["history"][0]["changed"]["dataset"] == ["dsprites", "npz:/data/other_sprites.npz"]


def test_epochs_and_validation(tmp_path, small_data):
    assert train_lib.train(_config(tmp_path, steps=None, epochs=2))["step"] == 20
    with pytest.raises(ValueError, match="steps or epochs, not both"):
        train_lib.train(_config(tmp_path, epochs=2))
    with pytest.raises(ValueError, match="batch_size must be > 0 and finite, got -4"):
        train_lib.train(_config(tmp_path, batch_size=-4))
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"learning_rate must be > 0 and finite, got {value}"):
            train_lib.validate(_config(tmp_path, learning_rate=value))
    with pytest.raises(ValueError, match="channels must be 1 \\(grayscale\\) or 3 \\(RGB\\), got 2"):
        train_lib.validate(_config(tmp_path, channels=2))
    with pytest.raises(ValueError, match="divisible by the 2 replicas"):
        train_lib.train(_config(tmp_path, batch_size=15, strategy="mirrored"))


def test_nan_guard_raises_before_checkpointing(tmp_path):
    model = jv.JointVAE(latent_spec="cont=2", seed=0)
    model.compile(steps_per_execution=1)
    keeper = checkpoints.Checkpointer(model, str(tmp_path))
    keeper.save(0)
    images = np.zeros((64, 32, 32, 1), "float32")
    model.optimizer.learning_rate.assign(1e38)  # diverges at once: the loss is NaN from step 2
    with pytest.raises(FloatingPointError, match=r"loss became nan by step 2; last good checkpoint: .*ckpt-1"):
        model.fit(images, batch_size=32, verbose=0,
                  callbacks=[callbacks.NaNGuard(keeper), callbacks.StepCheckpoint(keeper, every=1)])
    assert keeper.latest.endswith("ckpt-1")


def test_step_checkpoint_and_stop_at_step(tmp_path):
    model = jv.JointVAE(latent_spec="cont=2", seed=0)
    model.compile(steps_per_execution=1)
    keeper = checkpoints.Checkpointer(model, str(tmp_path), max_to_keep=10)
    images = (np.random.RandomState(0).rand(32 * 10, 32, 32, 1) > 0.5).astype("float32")
    model.fit(images, batch_size=32, epochs=3, verbose=0,
              callbacks=[callbacks.StopAtStep(7), callbacks.StepCheckpoint(keeper, every=3)])
    assert int(model.optimizer.iterations) == 7
    steps = sorted(int(p.rsplit("-", 1)[1]) for p in keeper.manager.checkpoints)
    assert steps == [3, 6, 7]


def test_annealed_straight_through_concrete_run_resumes_the_temperature_and_records_changes(
        tmp_path, small_data, caplog):
    options = dict(temperature="1.0,0.5,20", straight_through=True, discrete_kl="concrete")
    first = train_lib.train(_config(tmp_path, steps=10, **options))
    config = checkpoints.read_config(first["model_dir"])
    assert config["temperature"] == "1.0,0.5,20"
    assert config["model"]["temperature"] == [1.0, 0.5, 20]
    assert config["model"]["straight_through"] is True and config["model"]["discrete_kl"] == "concrete"
    assert _summary_steps(first["model_dir"], "train")["temperature"] == [10]  # a TensorBoard scalar
    summary = train_lib.train(_config(tmp_path, steps=20, **options))
    # Steps 11..20 ran after the restore: the mean of T(t) = 0.5 ** (t / 20) over them.
    expected = np.mean([0.5 ** (t / 20) for t in range(11, 21)])
    assert summary["logs"]["temperature"] == pytest.approx(expected, rel=1e-5)
    assert isinstance(summary["model"].temperature, jv.Anneal) and summary["model"].discrete_kl == "concrete"
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        train_lib.train(_config(tmp_path, steps=30, temperature="0.5"))
    assert "resuming at step 20 with model.temperature=0.5" in caplog.text
    history = checkpoints.read_config(first["model_dir"])["history"]
    assert history == [{"step": 20, "changed": {"model.temperature": [[1.0, 0.5, 20], 0.5],
                                                "model.straight_through": [True, False],
                                                "model.discrete_kl": ["concrete", "categorical"]}}]


def test_likelihood_reaches_config_json_and_the_model_and_a_change_on_resume_is_recorded(
        tmp_path, small_data, caplog):
    first = train_lib.train(_config(tmp_path, steps=10, likelihood="gaussian"))
    config = checkpoints.read_config(first["model_dir"])
    assert config["likelihood"] == config["model"]["likelihood"] == "gaussian"
    assert first["model"].likelihood == "gaussian" and np.isfinite(first["logs"]["reconstruction_loss"])
    assert keras.models.load_model(first["keras_model"]).likelihood == "gaussian"
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        train_lib.train(_config(tmp_path, steps=20))
    assert "resuming at step 10 with model.likelihood=bernoulli" in caplog.text
    history = checkpoints.read_config(first["model_dir"])["history"]
    assert history == [{"step": 10, "changed": {"model.likelihood": ["gaussian", "bernoulli"]}}]


@pytest.mark.parametrize("option, metric", [("category_balance", "kl_discrete_marginal"),
                                            ("latent_independence", "mi_continuous_discrete")])
def test_an_optional_term_reaches_config_json_and_the_model_and_a_change_on_resume_is_recorded(
        tmp_path, small_data, caplog, option, metric):
    first = train_lib.train(_config(tmp_path, steps=10, **{option: 20.0}))
    config = checkpoints.read_config(first["model_dir"])
    assert config[option] == config["model"][option] == 20.0
    assert getattr(first["model"], option) == 20.0 and np.isfinite(first["logs"][metric])
    assert getattr(keras.models.load_model(first["keras_model"]), option) == 20.0
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        train_lib.train(_config(tmp_path, steps=20))
    assert f"resuming at step 10 with model.{option}=0.0" in caplog.text
    history = checkpoints.read_config(first["model_dir"])["history"]
    assert history == [{"step": 10, "changed": {f"model.{option}": [20.0, 0.0]}}]


@pytest.mark.parametrize("overrides, message", [
    (dict(temperature="hot"), "temperature must be a number > 0 or 'start,end,num_iters' to anneal it, got 'hot'"),
    (dict(temperature="0"), "temperature must be > 0 and finite, got '0'"),
    (dict(temperature="1,0.5,0"), "Anneal num_iters must be an integer >= 1, got 0.0"),
    (dict(discrete_kl="gumbel"), "discrete_kl must be 'categorical' or 'concrete', got 'gumbel'"),
    (dict(straight_through="yes"), "straight_through must be True or False, got 'yes'"),
    (dict(precision="fp8"), "precision must be float32, mixed_bfloat16 or mixed_float16, got 'fp8'"),
    (dict(image_size=100), "image_size 100 is not supported: use one of 32, 64, 128, 256"),
    (dict(likelihood="mse"), "likelihood must be one of bernoulli, gaussian, laplace, continuous_bernoulli, got 'mse'"),
    (dict(category_balance=-0.5), "category_balance must be a finite number >= 0 (0: off), got -0.5"),
    (dict(latent_independence=float("nan")), "latent_independence must be a finite number >= 0 (0: off), got nan"),
])
def test_bad_temperature_and_discrete_options_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ValueError) as error:
        train_lib.validate(_config(tmp_path, **overrides))
    assert str(error.value) == message


def test_a_mixed_bfloat16_run_leaves_float32_alone_and_exports_a_float32_model(tmp_path, small_data):
    summary = train_lib.train(_config(tmp_path, steps=10, precision="mixed_bfloat16"))
    mixed = summary["model"]
    assert mixed.encoder.get_layer("conv_0").compute_dtype == "bfloat16"
    assert np.isfinite(list(summary["logs"].values())).all()
    assert checkpoints.read_config(summary["model_dir"])["precision"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    later = train_lib.train(_config(tmp_path, model_dir=str(tmp_path / "float32"), steps=10))
    assert {layer.compute_dtype for layer in later["model"].encoder.layers} == {"float32"}
    # Its checkpoint holds float32 variables, which a float32 process restores as a float32 model.
    restored = checkpoints.restore_model(summary["model_dir"])
    assert restored.encoder.get_layer("conv_0").compute_dtype == "float32"
    for a, b in zip(restored.get_weights(), mixed.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # The export, in this (float32) process: what jointvae-export runs after parsing its flags.
    from export.__main__ import ExportOptions, export

    output_dir = str(tmp_path / "export")
    assert export(ExportOptions(model_dir=summary["model_dir"], output_dir=output_dir, variants=["float32"],
                                fidelity_samples=20, latency_invokes=5, calibration_samples=10))["passed"] is True
    with open(os.path.join(output_dir, "export_report.json")) as f:
        assert json.load(f)["passed"] is True
    decode = tf.saved_model.load(os.path.join(output_dir, "saved_model")).signatures["decode"]
    assert decode.structured_input_signature[1]["latent"].dtype == tf.float32
    images = decode(latent=tf.zeros([2, 5]))["images"]
    assert images.dtype == tf.float32
    np.testing.assert_allclose(images, restored.decode(tf.zeros([2, 5])), atol=1e-5)


def test_precision_may_change_on_resume_and_is_recorded(tmp_path, small_data, caplog):
    train_lib.train(_config(tmp_path, steps=10, precision="mixed_float16"))
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        summary = train_lib.train(_config(tmp_path, steps=20))
    assert summary["step"] == 20 and np.isfinite(list(summary["logs"].values())).all()
    assert "resuming at step 10 with precision=float32" in caplog.text
    summary = train_lib.train(_config(tmp_path, steps=30, precision="mixed_float16"))
    assert summary["step"] == 30 and isinstance(summary["model"].optimizer, keras.optimizers.LossScaleOptimizer)
    history = checkpoints.read_config(summary["model_dir"])["history"]
    assert [h["changed"]["precision"] for h in history] == [["mixed_float16", "float32"],
                                                            ["float32", "mixed_float16"]]


def test_image_size_trains_the_preset_at_128_and_evaluates_there(tmp_path):
    """--image_size=128 resizes the data, grows the networks by one block and keeps the preset's recipe."""
    from jointvae_tf import evaluation
    from jointvae_tf.model import networks

    rng = np.random.RandomState(0)
    path = tmp_path / "grey40.npz"
    np.savez(path, images=(rng.rand(24, 40, 40) > 0.5).astype("uint8") * 255, labels=np.arange(24) % 3)
    summary = train_lib.train(_config(tmp_path, dataset=f"npz:{path}", image_size=128, steps=2, batch_size=8,
                                     checkpoint_every=2, image_every=2))
    model = summary["model"]
    assert tuple(model.image_shape) == (128, 128, 1)
    convs = [layer for layer in model.encoder.layers if layer.name.startswith("conv_")]
    assert [layer.filters for layer in convs] == networks.encoder_filters(128)
    config = checkpoints.read_config(summary["model_dir"])
    assert config["image_size"] == 128 and config["model"]["image_shape"] == [128, 128, 1]
    # 40x40 grey local files take the 64x64x1 preset (chairs) and keep its recipe at 128.
    assert config["model"]["cont_capacity"] == [0.0, 30.0, 100000, 300.0] and config["learning_rate"] == 1e-4
    restored = checkpoints.restore_model(summary["model_dir"])
    assert restored.decode(np.zeros((1, restored.latent_spec.latent_dim), "float32")).shape == (1, 128, 128, 1)
    results = evaluation.evaluate(restored, f"npz:{path}", metrics=["reconstruction", "discrete_accuracy"])
    assert results["metrics"]["num_evaluation_images"] == 24 and np.isfinite(results["metrics"]["reconstruction_loss"])
