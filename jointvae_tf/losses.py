"""The JointVAE objective as small pure functions (the only place the math lives).

    loss = recon + gamma_z * |KL_z - C_z(t)| + gamma_c * |KL_c - C_c(t)|

All functions take and return tensors; batch statistics are means over the
batch, as in the reference code.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from jointvae_tf.latents import Capacity


def reconstruction_loss(images: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Bernoulli negative log-likelihood of the images under the decoder.

    Args:
      images: targets in [0, 1], [batch, height, width, channels].
      logits: decoder logits (pre-sigmoid), same shape.

    Returns:
      Scalar: binary cross-entropy summed over pixels and channels, mean over the batch.
    """
    images = tf.convert_to_tensor(images, dtype=logits.dtype)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    return tf.reduce_mean(tf.reduce_sum(per_pixel, axis=tf.range(1, tf.rank(per_pixel))))


def kl_normal(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) per continuous dimension.

    Args:
      mean, log_var: [batch, cont].

    Returns:
      [cont]: batch mean of 0.5 * (mean^2 + exp(log_var) - 1 - log_var). KL_z is its sum.
    """
    kl = 0.5 * (tf.square(mean) + tf.exp(log_var) - 1.0 - log_var)
    return tf.reduce_mean(kl, axis=0)


def kl_categorical_uniform(logits: tf.Tensor | Sequence[tf.Tensor]) -> tf.Tensor:
    """KL of categorical posteriors to uniform priors, on the probabilities.

    Args:
      logits: one [batch, K] tensor, or a list of them (one per discrete latent).

    Returns:
      For one tensor a scalar, for a list a [num_discrete] vector: the batch mean of
      log K - entropy(softmax(logits)). KL_c is the sum over discrete latents.
    """
    if isinstance(logits, (list, tuple)):
        if not logits:
            return tf.zeros([0])
        return tf.stack([kl_categorical_uniform(l) for l in logits])
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    neg_entropy = tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
    num_categories = tf.cast(tf.shape(logits)[-1], log_probs.dtype)
    return tf.math.log(num_categories) + tf.reduce_mean(neg_entropy)


def capacity_value(capacity: Capacity, step, upper: float | None = None) -> tf.Tensor:
    """The capacity target C(t) = min(max, min + (max - min) * t / num_iters), optionally clipped to `upper`.

    Args:
      capacity: the schedule.
      step: t, the training iteration (counted from 1 at the first step); scalar, any numeric dtype.
      upper: an extra ceiling, e.g. sum(log K_i) for discrete latents.
    """
    t = tf.cast(step, tf.float32)
    value = capacity.min + (capacity.max - capacity.min) * t / float(capacity.num_iters)
    ceiling = capacity.max if upper is None else min(capacity.max, float(upper))
    return tf.minimum(value, ceiling)


def jointvae_loss(
    images: tf.Tensor,
    logits: tf.Tensor,
    mean: tf.Tensor | None,
    log_var: tf.Tensor | None,
    category_logits: Sequence[tf.Tensor],
    step,
    cont_capacity: Capacity,
    disc_capacity: Capacity,
) -> dict[str, tf.Tensor]:
    """All terms of the capacity-controlled objective.

    Args:
      images: [batch, height, width, channels] in [0, 1].
      logits: decoder logits, same shape.
      mean, log_var: [batch, cont], or None without continuous latents.
      category_logits: one [batch, K_i] per discrete latent (may be empty).
      step: t of the capacity schedules.
      cont_capacity, disc_capacity: the two schedules.

    Returns:
      dict with scalars "loss", "reconstruction_loss", "kl_continuous", "kl_discrete",
      "capacity_continuous", "capacity_discrete" and vectors "kl_continuous_per_dim" [cont],
      "kl_discrete_per_latent" [num_discrete].
    """
    recon = reconstruction_loss(images, logits)
    loss = recon
    terms = {"reconstruction_loss": recon}
    if mean is not None:
        kl_z_dims = kl_normal(mean, log_var)
        kl_z = tf.reduce_sum(kl_z_dims)
        c_z = capacity_value(cont_capacity, step)
        loss += cont_capacity.gamma * tf.abs(kl_z - c_z)
    else:
        kl_z_dims, kl_z, c_z = tf.zeros([0]), tf.zeros([]), tf.zeros([])
    if category_logits:
        kl_c_latents = kl_categorical_uniform(list(category_logits))
        kl_c = tf.reduce_sum(kl_c_latents)
        max_disc = sum(math.log(int(l.shape[-1])) for l in category_logits)
        c_c = capacity_value(disc_capacity, step, upper=max_disc)
        loss += disc_capacity.gamma * tf.abs(kl_c - c_c)
    else:
        kl_c_latents, kl_c, c_c = tf.zeros([0]), tf.zeros([]), tf.zeros([])
    terms.update(
        loss=loss,
        kl_continuous=kl_z,
        kl_discrete=kl_c,
        capacity_continuous=c_z,
        capacity_discrete=c_c,
        kl_continuous_per_dim=kl_z_dims,
        kl_discrete_per_latent=kl_c_latents,
    )
    return terms
