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


def check_likelihood_variants(likelihood: str, variants: Sequence[str]) -> None:
    """ValueError when a calibrated variant is asked of a decoder whose image is not sigmoid(logits)."""
    from jointvae_tf import losses

    calibrated = [v for v in variants if v in CALIBRATED_VARIANTS]
    if calibrated and likelihood not in losses.SIGMOID_MEAN_LIKELIHOODS:
        allowed = [v for v in VARIANTS if v not in CALIBRATED_VARIANTS]
        raise ValueError(
            f"variant {calibrated[0]!r} cannot represent the {likelihood} decoder's mean image in int8 "
            f"(only sigmoid outputs quantise): choose among {', '.join(allowed)}"
        )


def variants_for(likelihood: str, variants: Sequence[str] = DEFAULT_VARIANTS) -> tuple[str, ...]:
    """`variants` without the calibrated ones when the decoder's image is not sigmoid(logits) (see above)."""
    from jointvae_tf import losses

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
) -> dict[str, bytes]:
    """Converts model.decoder to each variant; returns {variant: .tflite bytes}.

    Args:
      model: the trained model.
      variants: names from VARIANTS.
      calibration: latents [N, L] for the calibrated variants (see `calibration_latents`).
      batch_size: the decoders' fixed batch, or None for any batch (see DEFAULT_BATCH_SIZE).
    """
    variants = check_variants(variants)
    check_likelihood_variants(model.likelihood, variants)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None (any batch) or an integer >= 1, got {batch_size!r}")
    for variant in variants:
        if variant in CALIBRATED_VARIANTS and (calibration is None or len(calibration) < (batch_size or 1)):
            raise ValueError(f"variant {variant!r} needs calibration latents, at least one batch of {batch_size or 1}")
    models = {}
    with tempfile.TemporaryDirectory(prefix="jointvae-decoder-") as tmp:
        module = saved_model.DecoderModule(model, batch_size=batch_size)
        decoder_dir = saved_model.save_module(module, os.path.join(tmp, "decoder"))
        for variant in variants:
            log.info("converting the %s decoder (batch %s)", variant, batch_size or "any")
            content = _converter(decoder_dir, variant, calibration, batch_size).convert()
            metadata = decoder_metadata(model, variant, batch_size)
            models[variant] = add_metadata(content, decode_tflite.METADATA_NAME, metadata)
    return models
