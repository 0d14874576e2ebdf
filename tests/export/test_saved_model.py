"""export.saved_model: four signatures equal to the Keras model, dynamic batch, loadable without Keras."""

import json
import os
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from export_test_utils import IMAGE_SHAPE, LATENT_DIM, run_python, squares

from export import saved_model

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def saved(trained_model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("saved_model") / "saved_model")
    saved_model.export_saved_model(trained_model, path)
    return path


@pytest.fixture(scope="module")
def loaded(saved):
    return tf.saved_model.load(saved)


def test_signatures_and_their_inputs(loaded):
    assert set(loaded.signatures) == set(saved_model.SIGNATURES)
    assert loaded.signatures["decode"].structured_input_signature[1]["latent"].shape.as_list() == [None, LATENT_DIM]
    for name in ("encode", "reconstruct"):
        spec = loaded.signatures[name].structured_input_signature[1]["images"]
        assert spec.shape.as_list() == [None, *IMAGE_SHAPE] and spec.dtype == tf.float32
    sample = loaded.signatures["sample"].structured_input_signature[1]
    assert {name: (s.shape.rank, s.dtype) for name, s in sample.items()} == {
        "count": (0, tf.int32), "seed": (0, tf.int32)}


@pytest.mark.parametrize("batch", [1, 5])
def test_encode_decode_reconstruct_equal_the_keras_model(trained_model, loaded, batch):
    images = squares(batch, seed=3)
    encoded = loaded.signatures["encode"](images=tf.constant(images))
    expected = trained_model.encode(images)
    assert set(encoded) == {"mean", "log_var", "probabilities_0"}
    np.testing.assert_allclose(encoded["mean"], expected["mean"], atol=TOLERANCE)
    np.testing.assert_allclose(encoded["log_var"], expected["log_var"], atol=TOLERANCE)
    np.testing.assert_allclose(encoded["probabilities_0"], tf.nn.softmax(expected["logits"][0]), atol=TOLERANCE)

    latent = trained_model.sample_prior(batch, seed=4)
    decoded = loaded.signatures["decode"](latent=latent)["images"]
    assert decoded.shape == (batch, *IMAGE_SHAPE)
    np.testing.assert_allclose(decoded, trained_model.decode(latent), atol=TOLERANCE)

    reconstructed = loaded.signatures["reconstruct"](images=tf.constant(images))["images"]
    np.testing.assert_allclose(reconstructed, trained_model.reconstruct(images), atol=TOLERANCE)


@pytest.mark.parametrize("count,seed", [(1, 0), (6, 7), (6, -3)])
def test_sample_draws_what_sample_prior_draws(trained_model, loaded, count, seed):
    out = loaded.signatures["sample"](count=tf.constant(count), seed=tf.constant(seed))
    expected_latent = trained_model.sample_prior(count, seed=seed)
    np.testing.assert_array_equal(out["latent"], expected_latent)
    np.testing.assert_allclose(out["images"], trained_model.sample(count, seed=seed), atol=TOLERANCE)


def test_sample_is_seeded(loaded):
    sample = loaded.signatures["sample"]
    first = sample(count=tf.constant(4), seed=tf.constant(11))["images"]
    np.testing.assert_array_equal(first, sample(count=tf.constant(4), seed=tf.constant(11))["images"])
    assert not np.array_equal(first, sample(count=tf.constant(4), seed=tf.constant(12))["images"])
    assert float(tf.reduce_min(first)) >= 0.0 and float(tf.reduce_max(first)) <= 1.0


def test_sample_refuses_a_count_below_one(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="count must be >= 1"):
        loaded.signatures["sample"](count=tf.constant(0), seed=tf.constant(0))


def test_only_encoder_and_decoder_variables_are_saved(trained_model, saved):
    """No optimizer slots, metric trackers or sampler seeds: the weights of the two networks only."""
    variables = tf.train.list_variables(os.path.join(saved, "variables", "variables"))
    stored = sorted(tuple(shape) for name, shape in variables if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"))
    networks = trained_model.encoder.variables + trained_model.decoder.variables
    assert stored == sorted(tuple(v.shape) for v in networks)


def test_decode_max_abs_error_measures_the_reloaded_model(trained_model, saved):
    latent = trained_model.sample_prior(20, seed=5).numpy()
    reference = trained_model.decode(latent).numpy()
    assert saved_model.decode_max_abs_error(saved, latent, reference, batch_size=7) <= TOLERANCE
    shifted = saved_model.decode_max_abs_error(saved, latent, reference + 0.25, batch_size=7)
    assert shifted == pytest.approx(0.25, abs=1e-5)


def test_save_module_refuses_an_existing_folder_and_leaves_nothing(trained_model, tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        saved_model.export_saved_model(trained_model, str(target))
    assert os.listdir(tmp_path) == ["exists"]


# The subprocess refuses to import these: loading must not need them. (Plain `import tensorflow`
# in TF 2.21 imports keras.src.optimizers eagerly; TensorFlow swallows the refusal, so this also
# proves the SavedModel needs no Keras at all.)
FRESH_PROCESS = textwrap.dedent("""
    import importlib.abc, json, sys
    import numpy as np

    BLOCKED = ("keras", "tf_keras", "tensorflow_probability", "jointvae_tf")

    class Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"import of {spec.name} refused by the test")

        def exec_module(self, module):
            pass

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] not in BLOCKED:
                return None
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        spec.loader = Refuse()
                        return spec
            return None

    sys.meta_path.insert(0, Block())
    import tensorflow as tf

    saved_path, data_path = sys.argv[1:3]
    data = np.load(data_path)
    loaded = tf.saved_model.load(saved_path)
    sig = loaded.signatures
    outputs = {
        "mean": sig["encode"](images=tf.constant(data["images"]))["mean"],
        "probabilities_0": sig["encode"](images=tf.constant(data["images"]))["probabilities_0"],
        "decode": sig["decode"](latent=tf.constant(data["latent"]))["images"],
        "reconstruct": sig["reconstruct"](images=tf.constant(data["images"]))["images"],
        "sample": sig["sample"](count=tf.constant(3), seed=tf.constant(9))["images"],
    }
    errors = {k: float(np.max(np.abs(v.numpy() - data[k]))) for k, v in outputs.items()}
    modules = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"errors": errors, "modules": modules, "loaded_type": type(loaded).__module__}))
""")


def test_loads_and_matches_in_a_fresh_process_without_keras_tfp_or_jointvae(trained_model, saved, tmp_path):
    images = squares(4, seed=8)
    latent = trained_model.sample_prior(4, seed=2).numpy()
    encoded = trained_model.encode(images)
    data_path = str(tmp_path / "expected.npz")
    np.savez(data_path, images=images, latent=latent,
             mean=encoded["mean"], probabilities_0=tf.nn.softmax(encoded["logits"][0]),
             decode=trained_model.decode(latent), reconstruct=trained_model.reconstruct(images),
             sample=trained_model.sample(3, seed=9))
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    result = run_python([str(script), saved, data_path])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] == []
    assert not report["loaded_type"].startswith("keras")
    assert all(error <= TOLERANCE for error in report["errors"].values()), report["errors"]


@pytest.mark.parametrize("likelihood", ["gaussian", "continuous_bernoulli"])
def test_decode_and_reconstruct_show_the_likelihoods_mean(likelihood, tmp_path):
    import jointvae_tf as jv
    from export_test_utils import LATENT_SPEC
    from jointvae_tf.model import losses

    model = jv.JointVAE(image_shape=IMAGE_SHAPE, latent_spec=LATENT_SPEC, seed=0, likelihood=likelihood)
    loaded = tf.saved_model.load(saved_model.export_saved_model(model, str(tmp_path / "saved_model")))
    latent = model.sample_prior(3, seed=5)
    expected = losses.likelihood_mean(model.decoder_logits(latent), likelihood)
    np.testing.assert_allclose(loaded.signatures["decode"](latent=latent)["images"], expected, atol=TOLERANCE)
    images = squares(2, seed=6)
    np.testing.assert_allclose(loaded.signatures["reconstruct"](images=tf.constant(images))["images"],
                               model.reconstruct(images), atol=TOLERANCE)
