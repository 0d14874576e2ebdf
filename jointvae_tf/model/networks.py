"""Encoder and decoder networks: the reference architecture, for square images of 32, 64, 128 or 256.

Encoder: Conv2D(k4, s2, 'same', ReLU) x [32, (32 for 64x64), 64, 64] -> flatten ->
Dense 256 ReLU -> heads: Dense(cont) mean, Dense(cont) log_var, Dense(K_i) logits per
discrete latent.

Decoder: Dense 256 ReLU -> Dense 1024 ReLU -> reshape [4, 4, 64] ->
Conv2DTranspose(k4, s2, 'same', ReLU) x [(64 for 64x64), 32, 32] -> Conv2DTranspose(C):
logits. The sigmoid stays outside the logits network so that the loss is a stable
BCE on logits.

32x32 and 64x64 are exactly the reference's networks. Larger images extend them the way
the reference goes from 32 to 64: each doubling of the side adds one more stride-2 block at
the image end, a 32-filter Conv2D first in the encoder and a 64-filter Conv2DTranspose first
in the decoder, so that every size meets the same [4, 4, 64] features and dense layers:

| size | encoder convs            | decoder transposed convs (then C) |
|------|--------------------------|-----------------------------------|
| 32   | 32, 64, 64               | 32, 32                            |
| 64   | 32, 32, 64, 64           | 64, 32, 32                        |
| 128  | 32, 32, 32, 64, 64       | 64, 64, 32, 32                    |
| 256  | 32, 32, 32, 32, 64, 64   | 64, 64, 64, 32, 32                |

Under a mixed Keras dtype policy ("mixed_bfloat16", "mixed_float16") the layers compute
in the policy's dtype with float32 variables; the networks' inputs are float32, and so
is the decoder's output (`build_decoder`). `JointVAE` casts the encoder's outputs and
the decoder's logits to float32 before sampling and the loss.

With kernel 4 and stride 2, Keras 'same' padding reproduces PyTorch's padding=1 for
both convolutions and transposed convolutions, so weights port layer for layer.

Initial weights follow PyTorch's defaults, as the reference was trained with them:
kernels U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)) and biases
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where a transposed convolution's fan_in is
out_channels * kh * kw, as PyTorch computes it. (With Keras' glorot kernels and zero
biases, short dSprites runs lost most encoder ReLUs early and decoded the mean image.)
"""

from __future__ import annotations

import math
from typing import Sequence

import keras

from jointvae_tf.model import losses
from jointvae_tf.model.latents import LatentSpec
from jointvae_tf.model.layers import LikelihoodMean

SUPPORTED_SIZES = (32, 64, 128, 256)
HIDDEN_UNITS = 256
FEATURE_SHAPE = (4, 4, 64)


def validate_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """Returns image_shape as (height, width, channels), or raises ValueError."""
    try:
        height, width, channels = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}") from None
    if height != width or height not in SUPPORTED_SIZES:
        raise ValueError(
            f"image_shape {tuple(image_shape)} is not supported: height and width must be equal and one of "
            f"{', '.join(str(size) for size in SUPPORTED_SIZES)}"
        )
    if channels < 1:
        raise ValueError(f"image_shape channels must be >= 1, got {channels}")
    return height, width, channels


def torch_default_init(fan_in: int) -> dict:
    """Initializer arguments reproducing PyTorch's default init of a layer with this fan_in."""
    bound = 1.0 / math.sqrt(fan_in)
    return {
        # VarianceScaling computes the kernel's own fan_in: scale 1/3 gives the bound sqrt(1/fan_in).
        "kernel_initializer": keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform"),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
    }


def _doublings(size: int) -> int:
    """How many times `size` doubles 32 (0 for 32, 1 for 64, ...)."""
    return SUPPORTED_SIZES.index(size)


def encoder_filters(size: int) -> list[int]:
    """Filters of the encoder's stride-2 convolutions for images of side `size` (see the module's table)."""
    return [32] * (1 + _doublings(size)) + [64, 64]


def decoder_filters(size: int) -> list[int]:
    """Filters of the decoder's ReLU transposed convolutions (the last one, to C channels, comes after)."""
    return [64] * _doublings(size) + [32, 32]


def build_encoder(image_shape: Sequence[int], latent_spec: LatentSpec, name: str = "encoder") -> keras.Model:
    """Builds the encoder.

    Args:
      image_shape: (height, width, channels), height = width in SUPPORTED_SIZES.
      latent_spec: the latents to parameterise.

    Returns:
      A functional model mapping images [batch, height, width, channels] to a dict:
      "mean" and "log_var" [batch, cont] (only when cont > 0) and "logits_i" [batch, K_i]
      for each discrete latent i.
    """
    height, _, _ = shape = validate_image_shape(image_shape)
    images = keras.Input(shape=shape, name="images")
    x, in_channels = images, shape[-1]
    for i, filters in enumerate(encoder_filters(height)):
        x = keras.layers.Conv2D(
            filters, 4, strides=2, padding="same", activation="relu", name=f"conv_{i}",
            **torch_default_init(16 * in_channels),
        )(x)
        in_channels = filters
    x = keras.layers.Flatten(name="flatten")(x)
    hidden = keras.layers.Dense(
        HIDDEN_UNITS, activation="relu", name="hidden", **torch_default_init(math.prod(FEATURE_SHAPE))
    )(x)
    head_init = torch_default_init(HIDDEN_UNITS)
    outputs = {}
    if latent_spec.continuous:
        outputs["mean"] = keras.layers.Dense(latent_spec.continuous, name="mean", **head_init)(hidden)
        outputs["log_var"] = keras.layers.Dense(latent_spec.continuous, name="log_var", **head_init)(hidden)
    for i, k in enumerate(latent_spec.discrete):
        outputs[f"logits_{i}"] = keras.layers.Dense(k, name=f"logits_{i}", **head_init)(hidden)
    return keras.Model(images, outputs, name=name)


def build_decoder_logits(
    image_shape: Sequence[int], latent_spec: LatentSpec, name: str = "decoder_logits"
) -> keras.Model:
    """Builds the decoder up to its logits: latent [batch, latent_dim] -> logits [batch, height, width, channels]."""
    height, _, channels = validate_image_shape(image_shape)
    latent = keras.Input(shape=(latent_spec.latent_dim,), name="latent")
    x = keras.layers.Dense(
        HIDDEN_UNITS, activation="relu", name="hidden", **torch_default_init(latent_spec.latent_dim)
    )(latent)
    x = keras.layers.Dense(
        math.prod(FEATURE_SHAPE), activation="relu", name="features", **torch_default_init(HIDDEN_UNITS)
    )(x)
    x = keras.layers.Reshape(FEATURE_SHAPE, name="reshape")(x)
    for i, filters in enumerate(decoder_filters(height)):
        x = keras.layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", activation="relu", name=f"deconv_{i}",
            **torch_default_init(16 * filters),
        )(x)
    logits = keras.layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", name="logits", **torch_default_init(16 * channels)
    )(x)
    return keras.Model(latent, logits, name=name)


def build_decoder(decoder_logits: keras.Model, name: str = "decoder", likelihood: str = "bernoulli") -> keras.Model:
    """Wraps a logits network with its output layer: latent [batch, latent_dim] -> images in [0, 1].

    The images are the mean of the likelihood p(x | z) (`losses.LIKELIHOODS`): the sigmoid of
    the logits for "bernoulli" (the reference), "gaussian" and "laplace", and the continuous
    Bernoulli's mean (`layers.LikelihoodMean`) for "continuous_bernoulli". The output layer
    computes in float32 whatever the global dtype policy, so under mixed precision the decoder
    (and what is exported of it) still returns float32 images.
    """
    losses.check_likelihood(likelihood)
    latent = keras.Input(shape=decoder_logits.input_shape[1:], name="latent")
    if likelihood in losses.SIGMOID_MEAN_LIKELIHOODS:
        output = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")
    else:
        output = LikelihoodMean(likelihood, name="likelihood_mean")
    images = output(decoder_logits(latent))
    return keras.Model(latent, images, name=name)

