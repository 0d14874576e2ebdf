import json
import os

import keras
import numpy as np
import pytest

import jointvae_tf as jv
from jointvae_tf import checkpoints


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
