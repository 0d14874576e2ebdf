"""TFLite decoders of a JointVAE: latent [batch, L] -> images [batch, H, W, C], in several precisions.

    images, _ = calibration_images(model.image_shape, "auto", read_config(model_dir))
    latents, _ = calibration_latents(model, images)
    models = convert_decoders(model, ["float32", "int8"], latents)     # {variant: .tflite bytes}

Every variant is converted from one SavedModel of `saved_model.DecoderModule` through its
`decode` signature, so each .tflite has a signature "decode" taking "latent" (float32
[1, L] by default, or [any batch, L]; laid out `[z, one-hot c_1, ...]`) to "images", and no
random op: the samplers stay outside the decoder. Each file also carries, as TFLite metadata
`decode_tflite.METADATA_NAME`, the latent layout and image shape, which the TensorFlow-free
`decode_tflite` tool reads to validate latents.

Variants (`VARIANTS`):
  float32       the float graph.
  float16       float16 weights, float32 compute (half the file).
  dynamic_int8  int8 weights, float activations, quantised on the fly.
  int8          int8 weights and activations, calibrated on representative latents; float32 in and out.
  int8_uint8    as int8 with uint8 images out, for direct display: pixel q = round(256 p) clipped to
                255 (the int8 sigmoid's scale 1/256), so p = q / 256; not in the defaults.

The calibrated variants need a decoder whose image is sigmoid(logits) (TFLite's int8 LOGISTIC):
a model trained with likelihood="continuous_bernoulli" shows the continuous Bernoulli's mean
1/(1 - exp(-l)) - 1/l, whose two terms grow without bound near l = 0 and cancel, which int8
activations cannot represent (measured: mean error 0.036, max 0.13 on [0, 1] pixels). Such models
get the float variants (`variants_for`); asking them for int8 or int8_uint8 is an error.

Calibration latents: the posterior modes `model.latent(images)` of real training images
(the model_dir's dataset, shuffled with `seed`) plus prior samples `model.sample_prior`,
half each; prior samples only when no dataset is named or it cannot be loaded.

Activation ranges (`RANGES`, "fitted" by default). The converter's own calibration sets each
int8 activation's range to the min and max seen. On trained decoders that range is mostly
irrelevant: the logits of a trained model reach -200 to -3000 on the background, where the
sigmoid is flat, so min/max spends the 256 levels there and an edge pixel's logit moves by
1 to 11 per step (35 dB, and 20 dB on the reference dSprites model). "fitted" runs the
calibrated float graph on the calibration latents and sets each range to the one that
minimises the squared error of what it feeds: the logits' error after the sigmoid, any
other activation's own (`fit_range`). And the first FULLY_CONNECTED stays float: its input
mixes continuous latents (weights ~0.5) with one-hot codes whose weights act as per-class
biases (~10 to 60), so its per-output-channel int8 scale erased the continuous weights
(29 dB worst image on the reference MNIST model); it is 0.2% of the multiply-adds.
"tuned" (the default) starts from the fitted ranges and then lets the whole int8 decoder choose:
a per-tensor fit counts every activation's error alike, but on trained decoders most of it sits in
the large activations that drive background logits to -1000, where any error is invisible after the
sigmoid, while the step it forces (5.5 for a range of 1400) moves edge logits by ~0.9. `tune_ranges`
walks the tensors in graph order once and for each tries its fitted bounds times `TUNE_FRACTIONS`
(each side on its own; tensors that share a range, a RESHAPE and its input, together), quantises
the decoder with each and keeps the range whose images are closest (mean squared error) to the
float decoder's on the calibration latents. Measured on the reference dSprites model's decoder, on
posterior modes of the 320 official frames: 32.0 dB mean / 28.8 worst image with fitted ranges, 38.4 /
33.2 tuned (a second pass over the tensors measured 38.1 / 32.2: not worth its time); it clips the last
hidden activation from 0..1406 to 0..116. It costs ~175 quantisations of the decoder (bench/tflite_decoder.py measured three decoders, every
choice of ranges each, in 4.5 min on 2 idle cores). "fitted" stops before
the tuning, "minmax" is the converter's calibration; both are kept for comparison (bench/tflite_decoder.py).
The ranges go through the TensorFlow converter's calibrate-only mode and `mlir_quantize`,
the two steps its own full-integer conversion runs (and `tf.lite.experimental.QuantizationDebugger`
uses), with the ranges edited in between.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import flatbuffers
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from export import decode_tflite, saved_model

if TYPE_CHECKING:
    from jointvae_tf.model import JointVAE

log = logging.getLogger("export")

VARIANTS = {
    "float32": "float32 weights and activations",
    "float16": "float16 weights, float32 activations",
    "dynamic_int8": "int8 weights, float activations (dynamic range)",
    "int8": "int8 weights and activations (calibrated), float32 input and output",
    "int8_uint8": "int8 weights and activations (calibrated), float32 input, uint8 output q = round(256 p)",
}
DEFAULT_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
CALIBRATED_VARIANTS = ("int8", "int8_uint8")
DEFAULT_CALIBRATION_SAMPLES = 400
# Decoders take a fixed batch of 1 by default. With a dynamic batch the transposed convolutions'
# output shapes are computed at run time, which XNNPACK does not delegate: TFLite's own kernels run
# them, and a batch-1 int8 decode measured 2.5x slower (and stalled ~12 ms per invoke with 2 threads
# on a busy CPU). `batch_size=None` still gives any-batch decoders.
DEFAULT_BATCH_SIZE = 1
RANGES = ("tuned", "fitted", "minmax")
DEFAULT_RANGES = "tuned"
# fit_range's candidates: the observed bound times these fractions (1e-3 ... 1), each side.
RANGE_FRACTIONS = np.geomspace(1e-3, 1.0, 49)
# Values per tensor fit_range scores candidates on (a seeded subsample beyond that).
RANGE_FIT_VALUES = 200_000
# tune_ranges' candidates: each fitted bound times these fractions (1e-2 ... 1), and its passes over the tensors.
TUNE_FRACTIONS = np.geomspace(1e-2, 1.0, 25)
TUNE_SWEEPS = 1


def check_likelihood_variants(likelihood: str, variants: Sequence[str]) -> None:
    """ValueError when a calibrated variant is asked of a decoder whose image is not sigmoid(logits)."""
    from jointvae_tf.model import losses

    calibrated = [v for v in variants if v in CALIBRATED_VARIANTS]
    if calibrated and likelihood not in losses.SIGMOID_MEAN_LIKELIHOODS:
        allowed = [v for v in VARIANTS if v not in CALIBRATED_VARIANTS]
        raise ValueError(
            f"variant {calibrated[0]!r} cannot represent the {likelihood} decoder's mean image in int8 "
            f"(only sigmoid outputs quantise): choose among {', '.join(allowed)}"
        )


def variants_for(likelihood: str, variants: Sequence[str] = DEFAULT_VARIANTS) -> tuple[str, ...]:
    """`variants` without the calibrated ones when the decoder's image is not sigmoid(logits) (see above)."""
    from jointvae_tf.model import losses

    if likelihood in losses.SIGMOID_MEAN_LIKELIHOODS:
        return tuple(variants)
    return tuple(v for v in variants if v not in CALIBRATED_VARIANTS)


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    """Returns the variants as a tuple, or raises ValueError naming an unknown or repeated one."""
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown TFLite variant {name!r}; allowed: {', '.join(VARIANTS)}")
    if len(set(variants)) != len(variants) or not variants:
        raise ValueError(f"variants must be distinct and at least one, got {list(variants)}")
    return tuple(variants)


# --------------------------------------------------------------------------- activation ranges
def int8_dequantized(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """values quantised to int8 over [low, high] and back, as TFLite does an activation.

    The range is widened to hold 0; scale s = (high - low) / 255, zero point z = round(-128 - low / s),
    q = clip(round(x / s) + z, -128, 127), result (q - z) s. Shapes are kept.
    """
    codes, levels = _int8_codes(values, low, high)
    return levels[codes]


def _int8_codes(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """(index of each value's int8 level q + 128 [same shape, int], the 256 dequantised levels (q - z) s)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high == low:
        return np.zeros(np.shape(values), np.intp), np.zeros(256)
    scale = (high - low) / 255.0
    zero_point = np.round(-128.0 - low / scale)
    codes = np.clip(np.round(values / scale) + zero_point, -128, 127).astype(np.intp) + 128
    return codes, (np.arange(-128.0, 128.0) - zero_point) * scale


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings for large |values|."""
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def fit_range(values: np.ndarray, transform=None, seed: int = 0) -> tuple[float, float]:
    """The int8 range [low, high] of an activation that minimises the mean squared quantisation error.

    Candidates are the observed min and max scaled by `RANGE_FRACTIONS` (each side on its
    own; a side of one sign only keeps 0), scored on up to `RANGE_FIT_VALUES` of the values.

    Args:
      values: samples of the activation, any shape.
      transform: where the error counts, e.g. `sigmoid` for logits; None: the values themselves.
      seed: of the subsample.

    Returns:
      (low, high), low <= 0 <= high; the min and max when every candidate is as good.
    """
    values = np.asarray(values, np.float64).ravel()
    if not values.size or not np.all(np.isfinite(values)):
        raise ValueError(f"fit_range needs finite values, got {values.size} values with non-finite ones")
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if values.size > RANGE_FIT_VALUES:
        values = np.random.default_rng(seed).choice(values, RANGE_FIT_VALUES, replace=False)
    target = transform(values) if transform else values

    def error_of(candidate_low: float, candidate_high: float) -> float:
        codes, levels = _int8_codes(values, candidate_low, candidate_high)
        # 256 levels: transform those, not every sample.
        return np.mean(np.square((transform(levels) if transform else levels)[codes] - target))

    lows = low * RANGE_FRACTIONS if low < 0 else [0.0]
    highs = high * RANGE_FRACTIONS if high > 0 else [0.0]
    best = (error_of(low, high), low, high)
    for candidate_low in lows:
        for candidate_high in highs:
            error = error_of(candidate_low, candidate_high)
            if error < best[0]:
                best = (error, float(candidate_low), float(candidate_high))
    return best[1], best[2]


def tune_ranges(
    ranges: Mapping[Any, tuple[float, float]],
    groups: Sequence[Sequence[Any]],
    score,
    fractions: Sequence[float] = TUNE_FRACTIONS,
    sweeps: int = TUNE_SWEEPS,
) -> tuple[dict[Any, tuple[float, float]], float]:
    """Coordinate descent on activation ranges: the ranges that minimise `score`, and its value.

    For each group in order, `sweeps` times: each nonzero bound of the group's starting range
    (its value in `ranges`) times each fraction is tried in place of that bound, for every tensor
    of the group, and kept when `score` drops. Deterministic: ties keep the earlier ranges.

    Args:
      ranges: {tensor: (low, high)} to start from (e.g. `fitted_ranges`); every grouped tensor in it.
      groups: tuples of tensors that share one range, in the order to visit them.
      score: {tensor: (low, high)} -> float, lower is better (e.g. the quantised decoder's image error).
      fractions: multipliers of the starting bounds.
      sweeps: passes over the groups.

    Returns:
      (best ranges {tensor: (low, high)}, holding every key of `ranges`; its score).
    """
    best_ranges = dict(ranges)
    best = float(score(best_ranges))
    for _ in range(sweeps):
        for group in groups:
            start = ranges[group[0]]
            for side in (0, 1):
                if start[side] == 0:
                    continue
                for fraction in fractions:
                    bounds = list(best_ranges[group[0]])
                    bounds[side] = float(start[side] * fraction)
                    trial = {**best_ranges, **{tensor: tuple(bounds) for tensor in group}}
                    value = float(score(trial))
                    if value < best:
                        best, best_ranges = value, trial
    return best_ranges, best


def _operator_name(model: schema.ModelT, operator: schema.OperatorT) -> str:
    code = model.operatorCodes[operator.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next(name for name, value in vars(schema.BuiltinOperator).items() if value == builtin)


def _activation_samples(calibrated: bytes, calibration: np.ndarray, batch_size: int | None) -> dict[int, np.ndarray]:
    """{tensor index: values} of every operator output of the calibrated float model on the calibration latents."""
    import warnings

    with warnings.catch_warnings():  # preserve_all_tensors warns that it is meant for debugging: it is one here
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    outputs = [int(t) for op in model.subgraphs[0].operators for t in op.outputs]
    index = interpreter.get_input_details()[0]["index"]
    step = batch_size or len(calibration)
    if batch_size is None:
        interpreter.resize_tensor_input(index, [step, calibration.shape[1]])
    interpreter.allocate_tensors()
    samples = {t: [] for t in outputs}
    for start in range(0, len(calibration) - step + 1, step):
        interpreter.set_tensor(index, np.ascontiguousarray(calibration[start:start + step], np.float32))
        interpreter.invoke()
        for t in outputs:
            samples[t].append(interpreter.get_tensor(t).ravel().copy())
    return {t: np.concatenate(v) for t, v in samples.items()}


def fitted_ranges(calibrated: bytes, calibration: np.ndarray, batch_size: int | None) -> dict[int, tuple[float, float]]:
    """{tensor index: (low, high)} for the activations of a calibrated decoder (see the module docstring).

    A LOGISTIC's input is fitted through the sigmoid, a LOGISTIC's output keeps TFLite's fixed
    range, a RESHAPE's output takes its input's range, every other calibrated operator output is
    fitted as is (outputs without calibration statistics, such as a dynamic batch's int32 shape
    arithmetic, are left alone).
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    tensors = model.subgraphs[0].tensors
    samples = _activation_samples(calibrated, calibration, batch_size)
    operators = [(op, _operator_name(model, op)) for op in model.subgraphs[0].operators]
    logits = {int(op.inputs[0]) for op, name in operators if name == "LOGISTIC"}
    ranges = {}
    for op, name in operators:
        output = int(op.outputs[0])
        quantization = tensors[output].quantization
        if name == "LOGISTIC" or quantization is None or quantization.min is None:
            continue
        if name == "RESHAPE" and int(op.inputs[0]) in ranges:
            ranges[output] = ranges[int(op.inputs[0])]
            continue
        ranges[output] = fit_range(samples[output], sigmoid if output in logits else None)
    return ranges


def range_groups(calibrated: bytes, ranges: Mapping[int, tuple[float, float]]) -> list[tuple[int, ...]]:
    """The tensors of `ranges` in graph order, a RESHAPE's output grouped with its input (they share a range)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    groups: list[list[int]] = []
    member: dict[int, list[int]] = {}
    for op in model.subgraphs[0].operators:
        output = int(op.outputs[0])
        if output not in ranges:
            continue
        source = int(op.inputs[0])
        if _operator_name(model, op) == "RESHAPE" and source in member:
            member[source].append(output)
            member[output] = member[source]
        else:
            member[output] = [output]
            groups.append(member[output])
    return [tuple(group) for group in groups]


def _decode_all(content: bytes, latents: np.ndarray, batch_size: int | None) -> np.ndarray:
    """The .tflite decoder's images [N, H, W, C] float32 of latents [N, L] (a last partial batch dropped)."""
    # Integer kernels and XNNPACK's float ones split work by output, so threads do not change the
    # images (the same tuned model with 1 or 2 threads, measured); decoding is most of the tuning's time.
    interpreter = Interpreter(model_content=content, num_threads=os.cpu_count() or 1)
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]
    step = batch_size or len(latents)
    if batch_size is None:
        interpreter.resize_tensor_input(input_details["index"], [step, latents.shape[1]])
    interpreter.allocate_tensors()
    images = []
    for start in range(0, len(latents) - step + 1, step):
        interpreter.set_tensor(input_details["index"], np.ascontiguousarray(latents[start:start + step], np.float32))
        interpreter.invoke()
        images.append(np.asarray(interpreter.get_tensor(output_details["index"]), np.float32))
    return np.concatenate(images)


def first_dense_output(calibrated: bytes) -> str | None:
    """The output tensor name of the FULLY_CONNECTED that reads the model input, if any (kept float)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    graph = model.subgraphs[0]
    for op in graph.operators:
        if _operator_name(model, op) == "FULLY_CONNECTED" and int(op.inputs[0]) in {int(i) for i in graph.inputs}:
            return graph.tensors[int(op.outputs[0])].name.decode("utf-8")
    return None


def _with_ranges(calibrated: bytes, ranges: Mapping[int, tuple[float, float]]) -> bytes:
    """The calibrated model with the min/max of the given tensors replaced.

    The floats are written in place in a copy of the flatbuffer (each calibrated tensor has its own
    one-element min and max vectors); range tuning calls this for every trial, where rebuilding the
    whole model through the object API took most of a second each on a 1.5 MB decoder.
    """
    content = bytearray(calibrated)
    tensors = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    for index, (low, high) in ranges.items():
        tensor = tensors.Tensors(index)
        quantization = tensor.Quantization()
        if quantization is None or quantization.MinIsNone() or quantization.MaxIsNone():
            raise ValueError(f"tensor {tensor.Name().decode()!r} has no calibration statistics to replace")
        if quantization.MinLength() != 1 or quantization.MaxLength() != 1:
            raise ValueError(f"tensor {tensor.Name().decode()!r} has per-channel statistics "
                             f"({quantization.MinLength()} values), not one range")
        quantization.MinAsNumpy()[0] = low
        quantization.MaxAsNumpy()[0] = high
    return bytes(content)


# --------------------------------------------------------------------------- calibration
def _dataset_images(name: str, config: Mapping[str, Any], count: int, image_shape, seed: int) -> np.ndarray:
    """`count` training images float32 [count, H, W, C] of dataset `name`, shuffled with `seed`.

    Shuffled because source orders walk one factor at a time (dSprites' first images differ only in y).
    """
    from jointvae_tf import data

    dataset = data.load_dataset(
        name, split="train", data_dir=config.get("data_dir"), manual_dir=config.get("manual_dir"),
        batch_size=count, shuffle=True, seed=seed, channels=image_shape[-1], image_size=image_shape[0],
    )
    for batch in dataset.take(1):
        images = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch, np.float32)
        if images.shape[1:] != tuple(image_shape):
            raise ValueError(
                f"dataset {name!r} gives images {list(images.shape[1:])}, the model takes {list(image_shape)}"
            )
        return images
    raise ValueError(f"dataset {name!r} yielded no batch of {count} images")


def calibration_images(
    image_shape: Sequence[int],
    source: str = "auto",
    config: Mapping[str, Any] | None = None,
    count: int = DEFAULT_CALIBRATION_SAMPLES // 2,
    seed: int = 0,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Real images to encode for calibration, or None, and where they came from.

    Args:
      image_shape: (H, W, C) the model takes.
      source: "auto" (the dataset in `config`; None, with the reason logged and recorded as
        "fallback", when there is none or it cannot be loaded), "none" (no images) or a
        dataset name (which must load).
      config: the model_dir's config.json (its "dataset", "data_dir", "manual_dir"), or None.
      count: number of images.
      seed: shuffling seed.

    Returns:
      (images float32 [count, H, W, C] or None, {"dataset": name or None[, "fallback": reason]}).
    """
    name = (config or {}).get("dataset") if source == "auto" else None if source == "none" else source
    if not name:
        return None, {"dataset": None}
    try:
        return _dataset_images(name, config or {}, count, image_shape, seed), {"dataset": name}
    except (ImportError, OSError, ValueError, tf.errors.OpError) as error:
        reason = f"dataset {name!r} could not be loaded: {error}"
        if source != "auto":
            raise ValueError(f"calibration images from {reason}") from None
        log.warning("calibration: %s; using prior samples only", reason)
        return None, {"dataset": None, "fallback": reason}


def calibration_latents(
    model: JointVAE, images: np.ndarray | None = None, count: int = DEFAULT_CALIBRATION_SAMPLES, seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """The representative latents [count, L] of full-integer quantisation.

    The posterior modes `model.latent(images)` of up to count // 2 images, then prior
    samples `model.sample_prior(..., seed)` for the rest.

    Returns:
      (latents float32 [count, L], {"source": "images+prior" or "prior", "images", "prior_samples"}).
    """
    if count < 2:
        raise ValueError(f"calibration needs at least 2 latents, got {count}")
    images = np.zeros((0, *model.image_shape), np.float32) if images is None else images[: count // 2]
    num_images = len(images)
    parts = [model.latent(images[i:i + 100]).numpy() for i in range(0, num_images, 100)]
    parts.append(model.sample_prior(count - num_images, seed=seed).numpy())
    log.info("calibration: %d latents, %d of them encoded images", count, num_images)
    info = {"source": "images+prior" if num_images else "prior", "images": num_images,
            "prior_samples": count - num_images}
    return np.concatenate(parts).astype(np.float32), info


# --------------------------------------------------------------------------- conversion
def _representative_dataset(latents: np.ndarray, batch_size: int):
    def generate() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(latents) - batch_size + 1, batch_size):
            yield [latents[start:start + batch_size]]

    return generate


def _converter(
    saved_model_dir: str, variant: str, calibration: np.ndarray | None, batch_size: int | None
) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[decode_tflite.SIGNATURE])
    if variant == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant in CALIBRATED_VARIANTS:
        converter.representative_dataset = _representative_dataset(calibration, batch_size or 1)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.uint8 if variant == "int8_uint8" else tf.float32
    return converter


def _fitted_int8(
    saved_model_dir: str, variant: str, calibration: np.ndarray, batch_size: int | None,
    cache: dict[str, Any], tuned: bool = True,
) -> bytes:
    """A calibrated variant with fitted (or tuned) ranges and a float first layer (see the module docstring).

    `cache` keeps the calibrated model and its ranges for the next calibrated variant.
    """
    from tensorflow.lite.python import convert as tflite_convert

    def quantize(calibrated: bytes, output_type, float_nodes: list[str]) -> bytes:
        return tflite_convert.mlir_quantize(
            calibrated, input_data_type=tf.float32, output_data_type=output_type, denylisted_nodes=float_nodes,
        )

    if "calibrated" not in cache:
        converter = _converter(saved_model_dir, variant, calibration, batch_size)
        converter._experimental_calibrate_only = True  # the converter's first step; mlir_quantize is its second
        calibrated = converter.convert()
        first = first_dense_output(calibrated)
        float_nodes = [first] if first else []
        ranges = fitted_ranges(calibrated, calibration, batch_size)
        if tuned:
            reference = _decode_all(calibrated, calibration, batch_size)  # the float graph: no quantize ops yet

            def image_error(trial: Mapping[int, tuple[float, float]]) -> float:
                quantized = quantize(_with_ranges(calibrated, trial), tf.float32, float_nodes)
                return float(np.mean(np.square(_decode_all(quantized, calibration, batch_size) - reference)))

            ranges, error = tune_ranges(ranges, range_groups(calibrated, ranges), image_error)
            log.info("tuned int8 activation ranges: image mean squared error %.3g on the calibration latents", error)
        cache.update(calibrated=_with_ranges(calibrated, ranges), float_nodes=float_nodes)
    return quantize(cache["calibrated"], tf.uint8 if variant == "int8_uint8" else tf.float32, cache["float_nodes"])


def add_metadata(content: bytes, name: str, value: Mapping[str, Any]) -> bytes:
    """The .tflite `content` with `value` (as JSON) added to its metadata under `name`."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(value, sort_keys=True).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=decode_tflite.TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def decoder_metadata(model: JointVAE, variant: str, batch_size: int | None) -> dict[str, Any]:
    """What a decoder file says about itself (read back by `decode_tflite.read_metadata`)."""
    return {
        "format": "jointvae-tf decoder",
        "latent_spec": model.latent_spec.to_dict(),
        "latent_dim": model.latent_spec.latent_dim,
        "image_shape": list(model.image_shape),
        "batch_size": batch_size,
        "variant": variant,
        "description": VARIANTS[variant],
    }


def convert_decoders(
    model: JointVAE,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    calibration: np.ndarray | None = None,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    ranges: str = DEFAULT_RANGES,
) -> dict[str, bytes]:
    """Converts model.decoder to each variant; returns {variant: .tflite bytes}.

    Args:
      model: the trained model.
      variants: names from VARIANTS.
      calibration: latents [N, L] for the calibrated variants (see `calibration_latents`).
      batch_size: the decoders' fixed batch, or None for any batch (see DEFAULT_BATCH_SIZE).
      ranges: the calibrated variants' activation ranges, one of RANGES (see the module docstring).
    """
    variants = check_variants(variants)
    check_likelihood_variants(model.likelihood, variants)
    if ranges not in RANGES:
        raise ValueError(f"unknown activation ranges {ranges!r}; allowed: {', '.join(RANGES)}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None (any batch) or an integer >= 1, got {batch_size!r}")
    for variant in variants:
        if variant in CALIBRATED_VARIANTS and (calibration is None or len(calibration) < (batch_size or 1)):
            raise ValueError(f"variant {variant!r} needs calibration latents, at least one batch of {batch_size or 1}")
    models = {}
    with tempfile.TemporaryDirectory(prefix="jointvae-decoder-") as tmp:
        module = saved_model.DecoderModule(model, batch_size=batch_size)
        decoder_dir = saved_model.save_module(module, os.path.join(tmp, "decoder"))
        cache: dict[str, Any] = {}
        for variant in variants:
            log.info("converting the %s decoder (batch %s)", variant, batch_size or "any")
            if variant in CALIBRATED_VARIANTS and ranges in ("tuned", "fitted"):
                content = _fitted_int8(decoder_dir, variant, calibration, batch_size, cache, tuned=ranges == "tuned")
            else:
                content = _converter(decoder_dir, variant, calibration, batch_size).convert()
            metadata = decoder_metadata(model, variant, batch_size)
            models[variant] = add_metadata(content, decode_tflite.METADATA_NAME, metadata)
    return models
