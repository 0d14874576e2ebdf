"""The public names stay where users find them, whatever folder their module lives in."""

import subprocess
import sys

import pytest

import jointvae_tf as jv
from jointvae_tf import model, training


def test_model_side_names_are_the_model_packages():
    assert jv.JointVAE is model.JointVAE is model.jointvae.JointVAE
    assert jv.losses is model.losses
    assert (jv.LatentSpec, jv.Capacity, jv.Anneal) == (model.LatentSpec, model.Capacity, model.Anneal)
    assert jv.GumbelSoftmaxSampler is model.layers.GumbelSoftmaxSampler
    assert jv.precision_policy is model.jointvae.precision_policy


def test_training_side_names_load_on_first_use():
    assert jv.training is training
    assert jv.training.train is training.train_lib.train
    assert jv.training.TrainConfig is training.train_lib.TrainConfig
    assert jv.presets is training.presets
    assert jv.presets.preset_for("mnist").latent_spec == jv.LatentSpec(10, (10,))
    with pytest.raises(AttributeError, match="no_such_module"):
        getattr(jv, "no_such_module")


def test_importing_the_package_does_not_load_the_training_side():
    code = "import sys, jointvae_tf; print(any(m.startswith('jointvae_tf.training') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
