"""Shared fixtures of the export tests: one briefly trained model_dir and one export of it, per session.

Training and converting take most of the suite's time, so every test module shares them.
The shared export uses reduced verification numbers (flags); the binary's defaults stay the spec's.
"""

import keras
import pytest
from export_test_utils import ALL_VARIANTS, FAST_FLAGS, IMAGE_SHAPE, LATENT_SPEC, run_python, squares

import jointvae_tf as jv
from jointvae_tf.training import checkpoints


@pytest.fixture(scope="session")
def trained_model():
    """A JointVAE (32x32x1, cont=4, disc=3) trained 48 steps on squares, so its weights are not random."""
    keras.utils.set_random_seed(0)
    model = jv.JointVAE(image_shape=IMAGE_SHAPE, latent_spec=LATENT_SPEC, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(squares(512), batch_size=32, epochs=3, verbose=0)
    return model


@pytest.fixture(scope="session")
def model_dir(trained_model, tmp_path_factory):
    """The model saved as a training run would: config.json and a checkpoint.

    The config names dsprites (64x64), which this 32x32 model cannot take, so "auto"
    calibration falls back to prior samples, as it does whenever the dataset cannot load.
    """
    path = str(tmp_path_factory.mktemp("model") / "model_dir")
    checkpoints.save_model_dir(trained_model, path, {"dataset": "dsprites"})
    return path


@pytest.fixture(scope="session")
def exported(model_dir, tmp_path_factory):
    """`python -m export` on model_dir with every variant: (output_dir, CompletedProcess)."""
    output_dir = str(tmp_path_factory.mktemp("export") / "out")
    result = run_python(["-m", "export", f"--model_dir={model_dir}", f"--output_dir={output_dir}",
                         f"--variants={ALL_VARIANTS}", *FAST_FLAGS])
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result
