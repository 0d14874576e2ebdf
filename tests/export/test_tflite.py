"""export.tflite: decoder variants, their signature, ops, size, metadata, and the calibration latents."""

import tempfile

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from export_test_utils import IMAGE_SHAPE, LATENT_DIM, squares

from export import decode_tflite, saved_model, tflite

OPERATOR_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
RANDOM_OPS = {"RANDOM_STANDARD_NORMAL", "RANDOM_UNIFORM", "MULTINOMIAL"}
VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}


def operators(content):
    """Builtin operator names of every subgraph of a .tflite."""
    model = schema.Model.GetRootAs(content, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    names = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            code = codes[graph.Operators(i).OpcodeIndex()]
            names.append(OPERATOR_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return names


@pytest.fixture(scope="module")
def calibration(trained_model):
    latents, _ = tflite.calibration_latents(trained_model, squares(32, seed=9), count=64, seed=0)
    return latents


@pytest.fixture(scope="module")
def decoders(trained_model, calibration, tmp_path_factory):
    """{variant: TFLiteDecoder} of every variant, written to files."""
    folder = tmp_path_factory.mktemp("tflite")
    models = tflite.convert_decoders(trained_model, list(tflite.VARIANTS), calibration)
    assert list(models) == list(tflite.VARIANTS)
    result = {}
    for variant, content in models.items():
        path = folder / f"decoder_{variant}.tflite"
        path.write_bytes(content)
        result[variant] = decode_tflite.TFLiteDecoder(str(path))
    return result


@pytest.fixture(scope="module")
def dynamic(trained_model, calibration, tmp_path_factory):
    """{variant: TFLiteDecoder} of any-batch float32 and int8 decoders."""
    folder = tmp_path_factory.mktemp("tflite_dynamic")
    models = tflite.convert_decoders(trained_model, ["float32", "int8"], calibration, batch_size=None)
    result = {}
    for variant, content in models.items():
        path = folder / f"decoder_{variant}.tflite"
        path.write_bytes(content)
        result[variant] = decode_tflite.TFLiteDecoder(str(path))
    return result


def test_every_variant_has_a_decode_signature_and_no_random_or_variable_op(decoders, dynamic):
    for variant, decoder in [*decoders.items(), *dynamic.items()]:
        assert decoder.latent_dim == LATENT_DIM and decoder.image_shape == IMAGE_SHAPE
        ops = set(operators(open(decoder.path, "rb").read()))
        assert not ops & RANDOM_OPS, (variant, ops)
        # Variables left unfrozen would leave the model without weights (see saved_model.tf_variables).
        assert not ops & VARIABLE_OPS, (variant, ops)
        assert {"FULLY_CONNECTED", "TRANSPOSE_CONV", "LOGISTIC"} <= ops, (variant, ops)


def test_fixed_batch_decoders_are_static_and_dynamic_ones_compute_shapes(decoders, dynamic):
    for decoder in decoders.values():
        assert decoder.batch_size == 1 and decoder.metadata["batch_size"] == 1
        # Static shapes all through: XNNPACK can take every op, transposed convolutions included.
        assert "SHAPE" not in operators(open(decoder.path, "rb").read())
    for decoder in dynamic.values():
        assert decoder.batch_size is None and decoder.metadata["batch_size"] is None
        assert "SHAPE" in operators(open(decoder.path, "rb").read())


@pytest.mark.parametrize("count", [1, 3, 17])
def test_the_float32_decoders_equal_keras_on_any_number_of_latents(trained_model, decoders, dynamic, count):
    latent = trained_model.sample_prior(count, seed=count).numpy()
    expected = trained_model.decode(latent)
    for decoder in (decoders["float32"], dynamic["float32"]):
        images = decoder.decode(latent, batch_size=8)
        assert images.shape == (count, *IMAGE_SHAPE)
        np.testing.assert_allclose(images, expected, atol=1e-5)


def test_a_dynamic_decoder_runs_a_whole_batch_in_one_invoke(trained_model, dynamic):
    latent = trained_model.sample_prior(5, seed=0).numpy()
    dynamic["float32"].prepare(latent)
    dynamic["float32"].invoke()
    assert dynamic["float32"].output().shape == (5, *IMAGE_SHAPE)
    one_by_one = np.concatenate([dynamic["int8"].decode(latent[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(dynamic["int8"].decode(latent), one_by_one, atol=1e-6)


def test_a_fixed_batch_decoder_refuses_another_batch(trained_model, decoders):
    with pytest.raises(ValueError, match="takes a fixed batch of 1 latents, got 2"):
        decoders["int8"].prepare(trained_model.sample_prior(2, seed=0).numpy())


def test_quantised_variants_are_smaller_and_close(trained_model, decoders):
    latent = trained_model.sample_prior(64, seed=1).numpy()
    reference = trained_model.decode(latent).numpy()
    size = {v: d.size_bytes for v, d in decoders.items()}
    assert size["float16"] < 0.55 * size["float32"]
    assert size["dynamic_int8"] < 0.35 * size["float32"]
    assert size["int8"] < 0.35 * size["float32"]
    for variant in ("float16", "dynamic_int8", "int8", "int8_uint8"):
        error = np.abs(decoders[variant].decode(latent) - reference)
        assert error.max() < 0.1 and error.mean() < 0.01, variant


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_the_tuning_decodes_the_same_images_on_any_number_of_threads(dynamic, calibration, monkeypatch, variant):
    """Range tuning decodes on every core; the images (and so the ranges it picks) must not depend on that."""
    with open(dynamic[variant].path, "rb") as f:
        content = f.read()
    images = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr(tflite.os, "cpu_count", lambda cores=cores: cores)
        images[cores] = tflite._decode_all(content, calibration, None)
    np.testing.assert_array_equal(images[1], images[2])
    np.testing.assert_array_equal(images[1], images[3])


def test_full_integer_variants_compute_in_int8(decoders):
    for variant in tflite.CALIBRATED_VARIANTS:
        ops = operators(open(decoders[variant].path, "rb").read())
        # float32 in, int8 inside: the first (float) layer's output is quantised, then all runs in int8.
        # The last op gives the float32 images (int8) or requantises them to uint8 (int8_uint8).
        assert ops[:2] == ["FULLY_CONNECTED", "QUANTIZE"], (variant, ops)
        assert ops[-1] == ("DEQUANTIZE" if variant == "int8" else "QUANTIZE"), (variant, ops)
        assert not {"QUANTIZE", "DEQUANTIZE"} & set(ops[2:-1]), (variant, ops)
    assert decoders["int8"].output_dtype == np.float32
    assert decoders["float16"].output_dtype == np.float32


def test_uint8_output_is_round_256_p_clipped(trained_model, decoders):
    latent = trained_model.sample_prior(16, seed=2).numpy()
    raw = decoders["int8_uint8"].decode_raw(latent)
    assert raw.dtype == np.uint8
    float_images = decoders["int8"].decode(latent)
    # Same calibration and graph: the uint8 output is the int8 sigmoid re-based, p = q / 256.
    np.testing.assert_allclose(raw / 256.0, float_images, atol=1 / 256 + 1e-6)
    np.testing.assert_allclose(decoders["int8_uint8"].decode(latent), raw / 256.0, atol=1e-7)


def test_metadata_describes_the_latent_layout(decoders):
    for variant, decoder in decoders.items():
        assert decoder.metadata["latent_spec"] == {"cont": 4, "disc": [3]}
        assert decoder.metadata["image_shape"] == list(IMAGE_SHAPE)
        assert decoder.metadata["variant"] == variant


def test_add_metadata_keeps_the_model_working(trained_model, decoders, tmp_path):
    content = open(decoders["float32"].path, "rb").read()
    again = tflite.add_metadata(content, "extra", {"a": 1})
    assert decode_tflite.read_metadata(again)["variant"] == "float32"
    path = tmp_path / "again.tflite"
    path.write_bytes(again)
    latent = trained_model.sample_prior(2, seed=0).numpy()
    again_images = decode_tflite.TFLiteDecoder(str(path)).decode(latent)
    np.testing.assert_array_equal(again_images, decoders["float32"].decode(latent))


def test_a_decoder_without_the_metadata_is_refused(trained_model, tmp_path):
    saved_model.save_module(saved_model.DecoderModule(trained_model), str(tmp_path / "decoder"))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "decoder"), signature_keys=["decode"])
    path = tmp_path / "bare.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ValueError, match="carries no 'jointvae_decoder' metadata"):
        decode_tflite.TFLiteDecoder(str(path))


def test_check_variants_names_the_bad_one():
    assert tflite.check_variants(["int8", "float32"]) == ("int8", "float32")
    with pytest.raises(ValueError, match="unknown TFLite variant 'int4'; allowed: float32"):
        tflite.check_variants(["float32", "int4"])
    with pytest.raises(ValueError, match="distinct"):
        tflite.check_variants(["int8", "int8"])
    with pytest.raises(ValueError, match="at least one"):
        tflite.check_variants([])


def test_conversion_arguments_are_checked(trained_model):
    with pytest.raises(ValueError, match="'int8' needs calibration latents"):
        tflite.convert_decoders(trained_model, ["int8"], None)
    with pytest.raises(ValueError, match="batch_size must be None .any batch. or an integer >= 1, got 0"):
        tflite.convert_decoders(trained_model, ["float32"], None, batch_size=0)


# --------------------------------------------------------------------------- calibration
def _one_hot_parts_are_one_hot(latents):
    part = latents[:, 4:]
    return np.all((part == 0) | (part == 1)) and np.all(part.sum(axis=1) == 1)


def test_prior_only_calibration(trained_model):
    latents, info = tflite.calibration_latents(trained_model, None, count=64, seed=0)
    assert latents.shape == (64, LATENT_DIM) and latents.dtype == np.float32
    assert info == {"source": "prior", "images": 0, "prior_samples": 64}
    assert _one_hot_parts_are_one_hot(latents)
    np.testing.assert_array_equal(latents, trained_model.sample_prior(64, seed=0))


def test_calibration_encodes_up_to_half_images(trained_model):
    images = squares(30, seed=5)
    latents, info = tflite.calibration_latents(trained_model, images, count=40, seed=3)
    assert info == {"source": "images+prior", "images": 20, "prior_samples": 20}
    np.testing.assert_allclose(latents[:20], trained_model.latent(images[:20]), atol=1e-6)
    np.testing.assert_array_equal(latents[20:], trained_model.sample_prior(20, seed=3))
    assert _one_hot_parts_are_one_hot(latents)
    _, info = tflite.calibration_latents(trained_model, images[:5], count=40)
    assert info == {"source": "images+prior", "images": 5, "prior_samples": 35}
    with pytest.raises(ValueError, match="at least 2 latents"):
        tflite.calibration_latents(trained_model, None, count=1)


@pytest.fixture
def fake_dataset(monkeypatch):
    """jointvae_tf.data.load_dataset replaced by squares, recording its arguments."""
    from jointvae_tf import data

    calls = []

    def load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return tf.data.Dataset.from_tensor_slices(squares(200, seed=5)).batch(kwargs["batch_size"], drop_remainder=True)

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    return calls


def test_images_of_the_configured_dataset(fake_dataset):
    config = {"dataset": "squares", "data_dir": "/data", "manual_dir": None}
    images, info = tflite.calibration_images(IMAGE_SHAPE, "auto", config, count=20, seed=3)
    assert info == {"dataset": "squares"}
    np.testing.assert_array_equal(images, squares(200, seed=5)[:20])
    name, kwargs = fake_dataset[0]
    assert name == "squares" and kwargs["data_dir"] == "/data" and kwargs["batch_size"] == 20
    assert kwargs["shuffle"] is True and kwargs["seed"] == 3


def test_a_named_dataset_is_used_even_without_config(fake_dataset):
    images, info = tflite.calibration_images(IMAGE_SHAPE, "squares", None, count=10)
    assert len(images) == 10 and info == {"dataset": "squares"}
    assert tflite.calibration_images(IMAGE_SHAPE, "none", {"dataset": "squares"}) == (None, {"dataset": None})
    assert tflite.calibration_images(IMAGE_SHAPE, "auto", None) == (None, {"dataset": None})
    assert len(fake_dataset) == 1


def test_auto_falls_back_when_the_dataset_does_not_fit(caplog):
    # dsprites is 64x64 only; the model takes 32x32 (data that resizes is loaded at the model's size instead).
    images, info = tflite.calibration_images(IMAGE_SHAPE, "auto", {"dataset": "dsprites"}, count=10)
    assert images is None and info["dataset"] is None
    assert "dataset 'dsprites' could not be loaded: dsprites images are 64x64, got image_size=32" in info["fallback"]
    assert any("using prior samples only" in record.getMessage() for record in caplog.records)


def test_a_requested_dataset_that_fails_is_an_error():
    with pytest.raises(ValueError, match="calibration images from dataset 'no_such_data' could not be loaded"):
        tflite.calibration_images(IMAGE_SHAPE, "no_such_data", count=10)


@pytest.fixture(scope="module")
def continuous_bernoulli_model():
    import jointvae_tf as jv
    from export_test_utils import LATENT_SPEC

    return jv.JointVAE(image_shape=IMAGE_SHAPE, latent_spec=LATENT_SPEC, seed=0, likelihood="continuous_bernoulli")


def test_a_continuous_bernoulli_decoder_exports_its_mean_in_float_and_refuses_int8(continuous_bernoulli_model,
                                                                                 tmp_path):
    model = continuous_bernoulli_model
    assert tflite.variants_for("continuous_bernoulli") == ("float32", "float16", "dynamic_int8")
    assert tflite.variants_for("laplace") == tflite.DEFAULT_VARIANTS
    models = tflite.convert_decoders(model, ["float32", "dynamic_int8"], batch_size=None)
    latent = model.sample_prior(9, seed=2).numpy()
    expected = model.decode(latent).numpy()
    # The continuous Bernoulli's mean, not the sigmoid of its logits.
    assert np.abs(expected - tf.sigmoid(model.decoder_logits(latent)).numpy()).max() > 1e-3
    for variant, content in models.items():
        path = tmp_path / f"{variant}.tflite"
        path.write_bytes(content)
        images = decode_tflite.TFLiteDecoder(str(path)).decode(latent)
        np.testing.assert_allclose(images, expected, atol=1e-5 if variant == "float32" else 0.02)
    for variant in tflite.CALIBRATED_VARIANTS:
        with pytest.raises(ValueError, match=f"variant '{variant}' cannot represent the continuous_bernoulli "
                                             "decoder's mean image in int8 .*: choose among float32, float16, "
                                             "dynamic_int8"):
            tflite.convert_decoders(model, ["float32", variant], model.sample_prior(4, seed=0).numpy())


# --------------------------------------------------------------------------- activation ranges
def test_int8_dequantized_matches_the_tflite_affine_scheme():
    values = np.array([-3.0, -1.0, 0.0, 0.004, 0.5, 1.0, 7.0])
    scale = 2.0 / 255.0
    zero_point = np.round(-128.0 + 1.0 / scale)
    expected = (np.clip(np.round(values / scale) + zero_point, -128, 127) - zero_point) * scale
    np.testing.assert_allclose(tflite.int8_dequantized(values, -1.0, 1.0), expected)
    # Saturates outside the range, keeps 0 exact, and a range without 0 is widened to hold it.
    assert tflite.int8_dequantized(np.array([5.0]), -1.0, 1.0)[0] == pytest.approx(expected[-1])
    assert tflite.int8_dequantized(np.array([0.0]), -1.0, 1.0)[0] == 0.0
    np.testing.assert_allclose(tflite.int8_dequantized(np.array([0.0, 2.0]), 1.0, 2.0), [0.0, 2.0], atol=1e-12)


def test_sigmoid_is_the_logistic_function_without_overflow():
    x = np.array([-1000.0, -5.0, 0.0, 3.0, 1000.0])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(tflite.sigmoid(x), [0.0, 1 / (1 + np.exp(5.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0])


def _brute_force_error(values, low, high, transform=lambda x: x):
    return np.mean(np.square(transform(tflite.int8_dequantized(values, low, high)) - transform(values)))


def test_fit_range_keeps_a_bounded_activation_and_never_does_worse_than_min_max():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(0.0, 4.0, 10_000)
    low, high = tflite.fit_range(uniform)
    assert low == 0.0 and high == pytest.approx(uniform.max(), rel=0.05)
    relu = np.maximum(rng.standard_t(3, 20_000), 0.0)
    low, high = tflite.fit_range(relu)
    assert low == 0.0 and high <= relu.max()
    assert _brute_force_error(relu, low, high) <= _brute_force_error(relu, 0.0, relu.max())


def test_fit_range_of_logits_counts_the_error_after_the_sigmoid():
    # Trained-decoder logits: a saturated background far below -100, edges within a few units of 0.
    rng = np.random.default_rng(1)
    logits = np.concatenate([rng.uniform(-3000.0, -100.0, 9_000), rng.normal(0.0, 3.0, 1_000), [40.0]])
    low, high = tflite.fit_range(logits, tflite.sigmoid)
    assert -40.0 < low < -5.0 and 5.0 < high <= 40.0
    fitted = _brute_force_error(logits, low, high, tflite.sigmoid)
    assert fitted < 0.01 * _brute_force_error(logits, logits.min(), logits.max(), tflite.sigmoid)
    # No candidate of the grid does better than the one returned.
    for a in tflite.RANGE_FRACTIONS[::6]:
        for b in tflite.RANGE_FRACTIONS[::6]:
            assert fitted <= _brute_force_error(logits, a * logits.min(), b * logits.max(), tflite.sigmoid) + 1e-15
    with pytest.raises(ValueError, match="finite values"):
        tflite.fit_range(np.array([1.0, np.nan]))


def test_tune_ranges_finds_the_best_grid_point_of_a_separable_score():
    # A separable quadratic: coordinate descent over the grid reaches its best grid point in one sweep.
    start = {1: (0.0, 100.0), 2: (0.0, 100.0), 3: (-50.0, 20.0), 4: (0.0, 7.0)}
    target = {1: 30.0, 2: 30.0, 3: (-5.0, 4.0)}
    fractions = np.geomspace(0.01, 1.0, 25)
    calls = []

    def score(ranges):
        calls.append(dict(ranges))
        assert ranges[1] == ranges[2] and ranges[4] == (0.0, 7.0)  # a group moves together; 4 is in no group
        return (ranges[1][1] - target[1]) ** 2 + (ranges[3][0] - target[3][0]) ** 2 + (ranges[3][1] - target[3][1]) ** 2

    best, value = tflite.tune_ranges(start, [(1, 2), (3,)], score, fractions, sweeps=1)
    nearest = lambda bound, goal: bound * fractions[np.argmin(np.abs(bound * fractions - goal))]
    assert best[1] == best[2] == (0.0, pytest.approx(nearest(100.0, 30.0)))
    assert best[3] == (pytest.approx(nearest(-50.0, -5.0)), pytest.approx(nearest(20.0, 4.0)))
    assert best[4] == (0.0, 7.0) and value == pytest.approx(score(best))
    # One score for the start, then one per nonzero bound and fraction: the zero low bound of group 1 is skipped.
    assert len(calls) == 1 + 3 * len(fractions) + 1
    # The start is kept when nothing scores better, and never does worse than it.
    same, value = tflite.tune_ranges(start, [(1, 2), (3,)], lambda ranges: 1.0, fractions, sweeps=2)
    assert same == start and value == 1.0


@pytest.fixture(scope="module")
def calibrated(trained_model, calibration):
    """The calibrated float decoder (batch 1): the converter's first step, before quantisation."""
    with tempfile.TemporaryDirectory() as folder:
        module = saved_model.DecoderModule(trained_model, batch_size=1)
        converter = tflite._converter(saved_model.save_module(module, folder + "/decoder"), "int8", calibration, 1)
        converter._experimental_calibrate_only = True
        return converter.convert()


def test_with_ranges_replaces_exactly_the_given_ranges(calibrated, calibration):
    ranges = tflite.fitted_ranges(calibrated, calibration, 1)
    tensors = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0).subgraphs[0].tensors
    new = {t: (-0.25 * (i + 1), 0.5 * (i + 1)) for i, t in enumerate(sorted(ranges)[::2])}
    patched = tflite._with_ranges(calibrated, new)
    assert len(patched) == len(calibrated)
    after = schema.ModelT.InitFromPackedBuf(bytearray(patched), 0).subgraphs[0].tensors
    for index, (before, tensor) in enumerate(zip(tensors, after)):
        if before.quantization is None or before.quantization.min is None:
            assert tensor.quantization is None or tensor.quantization.min is None
            continue
        expected = new.get(index, (before.quantization.min[0], before.quantization.max[0]))
        assert (tensor.quantization.min.tolist(), tensor.quantization.max.tolist()) == (
            [np.float32(expected[0])], [np.float32(expected[1])]), tensor.name
    assert tflite._with_ranges(calibrated, {}) == calibrated
    without = next(i for i, t in enumerate(tensors) if t.quantization is None or t.quantization.min is None)
    with pytest.raises(ValueError, match="has no calibration statistics to replace"):
        tflite._with_ranges(calibrated, {without: (-1.0, 1.0)})


def test_range_groups_put_a_reshape_with_its_input(calibrated, calibration):
    ranges = tflite.fitted_ranges(calibrated, calibration, 1)
    groups = tflite.range_groups(calibrated, ranges)
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    names = operators(calibrated)
    outputs = {int(op.outputs[0]): (names[i], int(op.inputs[0])) for i, op in enumerate(model.subgraphs[0].operators)}
    assert sorted(t for group in groups for t in group) == sorted(ranges)
    reshape = [t for t in ranges if outputs[t][0] == "RESHAPE"]
    assert reshape and all((outputs[t][1], t) in groups for t in reshape)
    assert all(len(group) == 1 for group in groups if outputs[group[0]][0] != "FULLY_CONNECTED")


def test_conversion_refuses_unknown_ranges(trained_model, calibration):
    with pytest.raises(ValueError, match="unknown activation ranges 'entropy'; allowed: tuned, fitted, minmax"):
        tflite.convert_decoders(trained_model, ["int8"], calibration, ranges="entropy")


def test_fitted_int8_keeps_only_the_first_dense_layer_float(decoders):
    for variant in tflite.CALIBRATED_VARIANTS:
        model = schema.ModelT.InitFromPackedBuf(bytearray(open(decoders[variant].path, "rb").read()), 0)
        graph = model.subgraphs[0]
        float_ops = [
            operators(open(decoders[variant].path, "rb").read())[i]
            for i, op in enumerate(graph.operators)
            if graph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32
        ]
        # The first FULLY_CONNECTED, and the DEQUANTIZE giving float32 images (int8: not int8_uint8).
        assert float_ops == (["FULLY_CONNECTED", "DEQUANTIZE"] if variant == "int8" else ["FULLY_CONNECTED"]), float_ops
