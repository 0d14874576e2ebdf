import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import jointvae_tf as jv
from jointvae_tf.training import checkpoints


def _trained(steps=2):
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
    model.compile()
    images = (np.random.RandomState(0).rand(32 * steps, 32, 32, 1) > 0.5).astype("float32")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    return model, images


def test_save_and_restore_model_dir(tmp_path):
    model, images = _trained()
    path = checkpoints.save_model_dir(model, str(tmp_path), {"dataset": "dsprites"})
    assert path.endswith("ckpt-2")
    config = checkpoints.read_config(str(tmp_path))
    assert config["dataset"] == "dsprites" and config["model"] == model.get_config()
    restored = checkpoints.restore_model(str(tmp_path))
    np.testing.assert_array_equal(restored.reconstruct(images[:4]), model.reconstruct(images[:4]))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


def test_checkpointer_restores_the_optimizer_step(tmp_path):
    model, images = _trained(steps=3)
    checkpoints.Checkpointer(model, str(tmp_path)).save()
    fresh = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
    fresh.compile()
    assert checkpoints.Checkpointer(fresh, str(tmp_path)).restore().endswith("ckpt-3")
    assert int(fresh.optimizer.iterations) == 3
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    assert checkpoints.Checkpointer(fresh, str(tmp_path / "empty")).restore() is None


def test_keeps_the_last_few(tmp_path):
    model, _ = _trained()
    keeper = checkpoints.Checkpointer(model, str(tmp_path), max_to_keep=2)
    for step in (10, 20, 30):
        keeper.save(step)
    names = sorted(f for f in os.listdir(tmp_path / "checkpoints") if f.endswith(".index"))
    assert names == ["ckpt-20.index", "ckpt-30.index"]


def test_restore_from_a_keras_file(tmp_path):
    model, images = _trained()
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_array_equal(checkpoints.restore_model(path).reconstruct(images[:2]), model.reconstruct(images[:2]))


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_dir .*nowhere not found"):
        checkpoints.restore_model(str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        checkpoints.restore_model(str(tmp_path / "empty"))
    model, _ = _trained()
    checkpoints.write_json_atomic(str(tmp_path / "nockpt" / "config.json"), {"model": model.get_config()})
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        checkpoints.restore_model(str(tmp_path / "nockpt"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        checkpoints.read_config(str(tmp_path / "bad"))


def test_incompatible_configs_are_refused():
    saved = {"model": jv.JointVAE(latent_spec="cont=3,disc=4", seed=0).get_config()}
    other = {"model": jv.JointVAE(latent_spec="cont=4,disc=4", seed=0).get_config()}
    checkpoints.check_compatible(saved, json.loads(json.dumps(saved)), "d")
    with pytest.raises(ValueError, match=r"latent_spec=\{'cont': 3"):
        checkpoints.check_compatible(saved, other, "d")


def _corrupt(path, how):
    data_file = path + ".data-00000-of-00001"
    if how == "truncate":
        os.truncate(data_file, os.path.getsize(data_file) // 3)
    elif how == "bitflip":
        with open(data_file, "r+b") as f:
            f.seek(os.path.getsize(data_file) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:  # the index file lost
        os.remove(path + ".index")


@pytest.mark.parametrize("how", ["truncate", "bitflip"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_older_one(tmp_path, how, caplog):
    model, images = _trained()
    keeper = checkpoints.Checkpointer(model, str(tmp_path), max_to_keep=3)
    keeper.save(10)
    expected = model.reconstruct(images[:2]).numpy()
    newest = keeper.save(20)
    checkpoints.write_json_atomic(str(tmp_path / "config.json"), {"model": model.get_config()})
    _corrupt(newest, how)
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        assert checkpoints.restorable_checkpoint(str(tmp_path)).endswith("ckpt-10")
    assert "ckpt-20 is unreadable" in caplog.text and "falling back" in caplog.text
    restored = checkpoints.restore_model(str(tmp_path))  # what export and evaluate use
    np.testing.assert_array_equal(restored.reconstruct(images[:2]), expected)
    fresh = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
    fresh.compile()
    assert checkpoints.Checkpointer(fresh, str(tmp_path)).restore().endswith("ckpt-10")  # what training uses


def test_no_readable_checkpoint_is_one_error_naming_each(tmp_path):
    model, _ = _trained()
    keeper = checkpoints.Checkpointer(model, str(tmp_path))
    checkpoints.write_json_atomic(str(tmp_path / "config.json"), {"model": model.get_config()})
    _corrupt(keeper.save(10), "truncate")
    _corrupt(keeper.save(20), "bitflip")
    with pytest.raises(checkpoints.CheckpointError, match=r"no readable checkpoint in .*ckpt-20 is unreadable: "
                       r".*Checksum does not match.*; .*ckpt-10 is unreadable") as raised:
        checkpoints.restore_model(str(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_truncated_keras_file_says_corrupt_not_missing(tmp_path):
    model, _ = _trained()
    path = tmp_path / "m.keras"
    model.save(str(path))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"m.keras exists but is not a readable .keras file \(truncated or corrupt"):
        checkpoints.restore_model(str(path))


def test_model_dir_must_be_a_writable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"model_dir .*file is a file, not a folder"):
        checkpoints.prepare_model_dir(str(tmp_path / "file"))
    with pytest.raises(ValueError, match=r"model_dir .*file/run cannot be written: Not a directory"):
        checkpoints.prepare_model_dir(str(tmp_path / "file" / "run"))
    assert checkpoints.prepare_model_dir(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert os.listdir(tmp_path / "a" / "b") == []  # the write test leaves nothing behind


@pytest.mark.serial
def test_model_dir_lock_is_exclusive_and_a_stale_one_is_taken_over(tmp_path, caplog):
    import subprocess
    import sys
    import textwrap

    model_dir = str(tmp_path)
    with checkpoints.ModelDirLock(model_dir):
        # Another process (flock is per open file: another process is the real case).
        code = textwrap.dedent(f"""
            from jointvae_tf.training import checkpoints
            try:
                checkpoints.ModelDirLock({model_dir!r}).__enter__()
            except ValueError as error:
                print(error)
        """)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert f"model_dir {model_dir} is in use by another training run (pid {os.getpid()} on" in result.stdout
    assert not os.path.exists(tmp_path / ".lock")  # released and removed
    # A process killed while holding the lock leaves the file; the next run takes it over.
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from jointvae_tf.training import checkpoints
        checkpoints.ModelDirLock({model_dir!r}).__enter__()
        os._exit(9)
    """)], timeout=120)
    assert killed.returncode == 9 and os.path.exists(tmp_path / ".lock")
    with caplog.at_level("WARNING", logger="jointvae_tf"), checkpoints.ModelDirLock(model_dir):
        pass
    assert "took over the lock left by a run that is no longer running (pid" in caplog.text


def test_resumed_runs_record_changed_settings(caplog):
    saved = {"dataset": "dsprites", "learning_rate": 5e-4, "batch_size": 64,
             "model": {"temperature": 0.67, "cont_capacity": [0, 5, 100, 30]}}
    resolved = json.loads(json.dumps(saved))
    assert checkpoints.record_changes(saved, resolved, 100) == [] and resolved["history"] == []
    resolved["dataset"] = "npz:/data/other.npz"
    with caplog.at_level("WARNING", logger="jointvae_tf"):
        history = checkpoints.record_changes(saved, resolved, 100)
    assert history == [{"step": 100, "changed": {"dataset": ["dsprites", "npz:/data/other.npz"]}}]
    assert "resuming at step 100 with dataset=npz:/data/other.npz" in caplog.text
    # The next resume keeps the history and adds to it.
    again = dict(resolved, learning_rate=1e-4)
    assert checkpoints.record_changes(resolved, again, 200) == history + [
        {"step": 200, "changed": {"learning_rate": [5e-4, 1e-4]}}]


def _compiled(precision):
    with jv.precision_policy(precision):
        model = jv.JointVAE(latent_spec="cont=3,disc=4", seed=0)
        model.compile()
    return model


def test_loss_scale_is_checkpointed_apart_so_every_precision_restores_every_other(tmp_path):
    """A LossScaleOptimizer's inner optimizer is saved as "optimizer", its loss scale as "loss_scale"."""
    model, _ = _trained(steps=3)  # float32
    checkpoints.Checkpointer(model, str(tmp_path / "float32")).save()
    scaled = _compiled("mixed_float16")
    assert isinstance(scaled.optimizer, keras.optimizers.LossScaleOptimizer)
    keeper = checkpoints.Checkpointer(scaled, str(tmp_path / "float32"))
    keeper.restore()  # no loss scale in it: the rest restores, the scale stays at its start
    assert int(scaled.optimizer.iterations) == 3 and float(scaled.optimizer.dynamic_scale) == 32768.0
    for a, b in zip(scaled.optimizer.inner_optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    scaled.optimizer.dynamic_scale.assign(1024.0)
    path = checkpoints.Checkpointer(scaled, str(tmp_path / "float16")).save()
    names = {name for name, _ in tf.train.list_variables(path)}
    assert "loss_scale/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert not any(name.startswith("optimizer/inner_optimizer") for name in names)  # float32's layout
    again = _compiled("mixed_float16")
    checkpoints.Checkpointer(again, str(tmp_path / "float16")).restore()
    assert float(again.optimizer.dynamic_scale) == 1024.0 and int(again.optimizer.iterations) == 3
    plain = _compiled("float32")
    checkpoints.Checkpointer(plain, str(tmp_path / "float16")).restore()
    assert int(plain.optimizer.iterations) == 3
    for a, b in zip(plain.weights, model.weights):
        np.testing.assert_array_equal(a, b)
