"""int8 decoders of fully trained models stay close to float32 on the latents of real test images.

The models are the reference MNIST and dSprites models trained by the original PyTorch code
(imported with jointvae_tf.compat); calibration encodes training images (MNIST train,
procedural dSprites) plus prior samples, as the export does; fidelity is measured on the
posterior modes of real test images (MNIST test digits, the 320 official dSprites frames).
Measured (bench/tflite_decoder.py --trained): on dSprites, the converter's min/max ranges give
20.2 dB mean / 17.7 dB worst image, fitted ranges 32.0 / 28.8, tuned ranges (the default)
38.4 / 33.2; on MNIST min/max 37.4 / 29.0, fitted 48.9 / 46.0, tuned 51.3 / 47.7
(500 test digits).
"""

import os

import numpy as np
import pytest
from shared_data import shared_data

from export import decode_tflite, report, tflite

CALIBRATION_SAMPLES = 400
MNIST_TEST_IMAGES = 200
# (mean, worst-image) PSNR floors in dB of the default (tuned) int8 decoder.
FLOORS = {"mnist": (45.0, 40.0), "dsprites": (37.0, 31.0)}


def _reference_model(name):
    pytest.importorskip("torch", reason="torch is not installed (pip install 'jointvae-tf[torch]')")
    import jointvae_tf as jv

    folder = shared_data("reference_models", name)
    return jv.compat.load_torch_checkpoint(os.path.join(folder, "model.pt"), os.path.join(folder, "specs.json"))


def _test_images(name):
    from jointvae_tf import data

    if name == "mnist":
        test = data.load_dataset("idx:" + shared_data("mnist", "t10k-images-idx3-ubyte.gz"),
                                 batch_size=MNIST_TEST_IMAGES, shuffle=True, seed=5)
        return next(iter(test)).numpy()
    from PIL import Image

    frames = []
    with Image.open(shared_data("dsprites", "dsprites.gif")) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("L")) > 127)
    return np.stack(frames)[..., None].astype(np.float32)


def _setup(name):
    """(model, calibration latents, test latents, Keras float32 images of the test latents)."""
    model = _reference_model(name)
    source = "idx:" + shared_data("mnist", "train-images-idx3-ubyte.gz") if name == "mnist" else "dsprites"
    train = tflite.calibration_images(model.image_shape, source, count=CALIBRATION_SAMPLES // 2)[0]
    calibration, _ = tflite.calibration_latents(model, train, CALIBRATION_SAMPLES, seed=0)
    images = _test_images(name)
    latent = np.concatenate([model.latent(images[i:i + 100]).numpy() for i in range(0, len(images), 100)])
    reference = np.concatenate([model.decode(latent[i:i + 100]).numpy() for i in range(0, len(latent), 100)])
    return model, calibration, latent, reference


def _fidelity(model, calibration, latent, reference, ranges, folder):
    content = tflite.convert_decoders(model, ["int8"], calibration, ranges=ranges)["int8"]
    path = os.path.join(folder, f"decoder_{ranges}.tflite")
    decode_tflite.atomic_write(path, content)
    return report.fidelity(decode_tflite.TFLiteDecoder(path).decode(latent), reference)


@pytest.mark.parametrize("name, weaker", [("mnist", "minmax"), ("dsprites", "fitted")])
def test_default_int8_decoder_of_a_trained_model_reaches_the_floor(name, weaker, tmp_path):
    model, calibration, latent, reference = _setup(name)
    mean_floor, worst_floor = FLOORS[name]
    default = _fidelity(model, calibration, latent, reference, tflite.DEFAULT_RANGES, str(tmp_path))
    assert default["psnr_db"] >= mean_floor and default["worst_image_psnr_db"] >= worst_floor, default
    # The floor means something: a weaker choice of ranges misses it on the same latents.
    missed = _fidelity(model, calibration, latent, reference, weaker, str(tmp_path))
    assert missed["psnr_db"] < mean_floor or missed["worst_image_psnr_db"] < worst_floor, missed
