import pytest

import jointvae_tf as jv
from jointvae_tf.training import presets


def test_reference_hyperparameters():
    mnist = presets.preset_for("mnist")
    assert mnist.image_shape == (32, 32, 1) and mnist.latent_spec == jv.LatentSpec(10, (10,))
    assert mnist.cont_capacity == jv.Capacity(0, 5, 25000, 30) == mnist.disc_capacity
    fashion = presets.preset_for("fashion")  # the reference's name
    assert fashion.disc_capacity == jv.Capacity(0, 10, 50000, 100)
    dsprites = presets.preset_for("dsprites")
    assert dsprites.image_shape == (64, 64, 1) and dsprites.latent_spec == jv.LatentSpec(6, (3,))
    assert dsprites.cont_capacity == jv.Capacity(0, 40, 300000, 150)
    assert dsprites.disc_capacity == jv.Capacity(0, 1.1, 300000, 150)
    assert presets.preset_for("celeb_a").image_shape == (64, 64, 3)
    chairs = presets.preset_for("chairs")
    assert chairs.latent_spec == jv.LatentSpec(32, (2, 2, 2)) and chairs.learning_rate == 1e-4
    assert all(p.batch_size == 64 for p in presets.PRESETS.values())


def test_dsprites_fast_is_the_dsprites_model_on_a_30k_step_schedule():
    from jointvae_tf.training import train_lib

    fast, reference = presets.preset_for("dsprites_fast"), presets.preset_for("dsprites")
    assert (fast.image_shape, fast.latent_spec, fast.learning_rate) == \
        (reference.image_shape, reference.latent_spec, reference.learning_rate)
    assert fast.cont_capacity == jv.Capacity(5, 25, 30000, 100) and fast.disc_capacity == jv.Capacity(0, 1.1, 30000, 100)
    assert (fast.steps, reference.steps) == (30000, None)
    # Unset --steps: the preset's own length; else the longest capacity schedule, as before.
    for preset, steps in (("dsprites_fast", 30000), (None, 300000)):
        config = train_lib.TrainConfig(dataset="dsprites", preset=preset)
        resolved = train_lib.resolve(config, (64, 64, 1))
        assert train_lib._total_steps(config, resolved, -1)[0] == steps
    config = train_lib.TrainConfig(dataset="dsprites", preset="dsprites_fast", steps=1234)
    assert train_lib._total_steps(config, train_lib.resolve(config, (64, 64, 1)), -1)[0] == 1234


def test_local_files_take_the_preset_of_their_image_size():
    assert presets.preset_for("folder:/x", (64, 64, 1)) is presets.PRESETS["chairs"]
    assert presets.preset_for("folder:/x", (64, 64, 3)) is presets.PRESETS["celeb_a"]
    assert presets.preset_for("idx:/x", (32, 32, 1)).latent_spec == jv.LatentSpec(10, (10,))
    assert presets.batch_size_for("folder:/x") == 64


def test_unknown_dataset():
    with pytest.raises(ValueError, match="no preset for dataset 'cifar'; known: "):
        presets.preset_for("cifar")
