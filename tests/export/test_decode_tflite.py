"""export.decode_tflite: the TensorFlow-free decoder, latent checks, PNG writing and the on-device tool."""

import io
import json
import os
import stat
import textwrap

import numpy as np
import pytest
from export_test_utils import IMAGE_SHAPE, LATENT_DIM, run_python
from PIL import Image

from export import decode_tflite

# Runs the tool in a fresh process, then reports which heavy modules were ever imported.
TOOL = textwrap.dedent("""
    import json, sys
    sys.argv = ["decode_tflite", *sys.argv[1:]]
    import export.decode_tflite
    try:
        export.decode_tflite.run()
    except SystemExit as exit:
        code = exit.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jointvae_tf", "tf_keras"))
    print(json.dumps({"exit": code, "heavy_modules": heavy}))
""")


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    path = tmp_path_factory.mktemp("tool") / "tool.py"
    path.write_text(TOOL)
    return str(path)


def run_tool(tool, *args):
    """(exit code, heavy modules imported, stdout, stderr) of the tool on args."""
    result = run_python([tool, *args])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return summary["exit"], summary["heavy_modules"], result.stdout, result.stderr


def read_png(path):
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def decoder_path(exported):
    return os.path.join(exported[0], "decoder_int8.tflite")


def test_random_latents_to_pngs_without_tensorflow(tool, decoder_path, tmp_path):
    out = tmp_path / "pngs"
    code, heavy, stdout, stderr = run_tool(tool, f"--model={decoder_path}", f"--output_dir={out}",
                                           "--random=3", "--seed=4")
    assert code == 0, stderr
    assert heavy == []
    assert sorted(os.listdir(out)) == ["image_000.png", "image_001.png", "image_002.png"]
    decoder = decode_tflite.TFLiteDecoder(decoder_path)
    expected = decode_tflite.to_uint8(decoder.decode(decoder.random_latents(3, seed=4)))
    for i in range(3):
        assert str(out / f"image_{i:03d}.png") in stdout
        np.testing.assert_array_equal(read_png(out / f"image_{i:03d}.png"), expected[i, ..., 0])


def test_given_latents_and_uint8_output(tool, exported, tmp_path):
    path = os.path.join(exported[0], "decoder_int8_uint8.tflite")
    latents = ["0.5,-1,0.25,2,0,0,1", "0,0,0,0,1,0,0"]
    code, heavy, _, stderr = run_tool(tool, f"--model={path}", f"--output_dir={tmp_path}",
                                      *(f"--latent={text}" for text in latents))
    assert code == 0, stderr
    assert heavy == []
    raw = decode_tflite.TFLiteDecoder(path).decode_raw(np.array([[float(v) for v in t.split(",")] for t in latents]))
    assert raw.dtype == np.uint8
    for i in range(2):
        np.testing.assert_array_equal(read_png(tmp_path / f"image_{i:03d}.png"), raw[i, ..., 0])


@pytest.mark.parametrize("latent,message", [
    ("0.5,-1,0.25,0,0,1", "has 6 values; this decoder takes 7: 4 continuous values then one-hot groups of [3]"),
    ("0.5,-1,0.25,2,0,1,1",
     "discrete latent 0 (values 5 to 7) must be one-hot, a single 1 and 2 zeros, got [0.0, 1.0, 1.0]"),
    ("0.5,-1,0.25,2,0,0.5,0.5", "must be one-hot"),
    ("0.5,-1,0.25,2,0,0,0", "must be one-hot"),
    ("0.5,abc,0.25,2,0,0,1", "'abc' is not a number"),
    ("0.5,nan,0.25,2,0,0,1", "holds non-finite values"),
])
def test_bad_latents_are_clear_errors_and_write_nothing(tool, decoder_path, tmp_path, latent, message):
    out = tmp_path / "pngs"
    code, heavy, _, stderr = run_tool(tool, f"--model={decoder_path}", f"--output_dir={out}",
                                      "--latent=0,0,0,0,1,0,0", f"--latent={latent}")
    assert code == 1
    assert heavy == []
    assert f"decode_tflite: error: latent '{latent}'" in stderr and message in stderr
    assert not out.exists()


def test_corrupted_or_missing_models_are_clear_errors(tool, decoder_path, tmp_path):
    content = open(decoder_path, "rb").read()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(content[: len(content) // 3])
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.RandomState(0).bytes(4096))
    cases = {
        truncated: "is not a valid TFLite model (corrupted?)",
        garbage: "is not a TFLite model: it lacks the 'TFL3' file identifier",
        tmp_path / "missing.tflite": "decoder model",
    }
    for path, message in cases.items():
        code, heavy, _, stderr = run_tool(tool, f"--model={path}", f"--output_dir={tmp_path / 'out'}", "--random=1")
        assert code == 1, path
        assert "decode_tflite: error: " in stderr and message in stderr and str(path) in stderr
        assert heavy == []
    assert not (tmp_path / "out").exists()


def test_latent_and_random_are_exclusive(tool, decoder_path, tmp_path):
    for args in ([], ["--random=2", "--latent=0,0,0,0,1,0,0"]):
        code, _, _, stderr = run_tool(tool, f"--model={decoder_path}", f"--output_dir={tmp_path}", *args)
        assert code == 1 and "give --latent (one or more) or --random=N" in stderr


def test_an_unwritable_output_dir_is_a_clear_error(tool, decoder_path, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, _, stderr = run_tool(tool, f"--model={decoder_path}", f"--output_dir={blocker / 'pngs'}", "--random=1")
    assert code == 1 and f"cannot write PNG files to {blocker / 'pngs'}" in stderr


def test_the_export_package_imports_without_tensorflow():
    heavy = "sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras', 'jointvae_tf')))"
    result = run_python(["-c", f"import sys, export, export.decode_tflite, export.report; print({heavy})"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- in-process pieces
def test_decoder_properties_and_latent_checks(decoder_path):
    decoder = decode_tflite.TFLiteDecoder(decoder_path)
    assert decoder.latent_dim == LATENT_DIM and decoder.image_shape == IMAGE_SHAPE
    assert (decoder.continuous, decoder.discrete) == (4, (3,))
    assert decoder.discrete_slices() == [slice(4, 7)]
    np.testing.assert_array_equal(decoder.parse_latent("1, 2, 3, 4, 0, 1, 0"), [1, 2, 3, 4, 0, 1, 0])
    with pytest.raises(ValueError, match=r"latent must have shape \[batch, 7\], got \[2, 6\]"):
        decoder.decode(np.zeros((2, 6)))


def test_random_latents_are_prior_samples(decoder_path):
    decoder = decode_tflite.TFLiteDecoder(decoder_path)
    latents = decoder.random_latents(2000, seed=0)
    assert latents.shape == (2000, LATENT_DIM) and latents.dtype == np.float32
    for latent in latents[:50]:
        decoder.check_latent(latent)
    assert abs(latents[:, :4].mean()) < 0.1 and abs(latents[:, :4].std() - 1) < 0.1
    assert np.all(np.abs(latents[:, 4:].mean(axis=0) - 1 / 3) < 0.05)
    np.testing.assert_array_equal(latents, decoder.random_latents(2000, seed=0))


def test_a_tflite_that_is_not_a_decoder_is_refused(tmp_path):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def double(self, x):
            return {"y": 2 * x}

    module = Doubler()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.double.get_concrete_function()], module)
    path = tmp_path / "doubler.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ValueError, match="has no 'decode' signature taking 'latent' to 'images'"):
        decode_tflite.TFLiteDecoder(str(path))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_round_trips(channels):
    image = np.random.RandomState(channels).randint(0, 256, size=(5, 7, channels)).astype(np.uint8)
    with Image.open(io.BytesIO(decode_tflite.encode_png(image))) as decoded:
        pixels = np.asarray(decoded)
    np.testing.assert_array_equal(pixels.reshape(5, 7, channels), image)


def test_encode_png_scales_floats_and_refuses_bad_shapes():
    floats = np.array([[[0.0], [0.5], [1.0], [1.2]]], np.float32)
    with Image.open(io.BytesIO(decode_tflite.encode_png(floats))) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), [[0, 128, 255, 255]])
    with pytest.raises(ValueError, match="1 to 4 channels, got"):
        decode_tflite.encode_png(np.zeros((4, 4, 5), np.uint8))


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "image.png"
    target.write_bytes(b"old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        decode_tflite.atomic_write(str(target), b"new")
    assert os.listdir(tmp_path) == ["image.png"] and target.read_bytes() == b"old"


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_pngs_follow_the_umask(tool, decoder_path, tmp_path, umask):
    """0644 PNGs in a 0755 folder under umask 022, 0600 / 0700 under 077 (mkstemp would give 0600 always)."""
    out = tmp_path / "pngs"
    result = run_python([tool, f"--model={decoder_path}", f"--output_dir={out}", "--random=2"],
                        preexec_fn=lambda: os.umask(umask))
    assert json.loads(result.stdout.strip().splitlines()[-1])["exit"] == 0, result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask
    modes = {name: oct(stat.S_IMODE(os.stat(out / name).st_mode)) for name in os.listdir(out)}
    assert modes == {"image_000.png": oct(0o666 & ~umask), "image_001.png": oct(0o666 & ~umask)}
