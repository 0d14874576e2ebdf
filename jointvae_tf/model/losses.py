"""The JointVAE objective as small pure functions (the only place the math lives).

    loss = recon + gamma_z * |KL_z - C_z(t)| + gamma_c * |KL_c - C_c(t)|
           [+ category_balance * KL(q(c) || U)] [+ latent_independence * I(z; c)]

recon is -log p(x | z) summed over pixels, in nats, under the reference's Bernoulli or
another observation model (LIKELIHOODS: Gaussian or Laplace of fixed scale, continuous Bernoulli).

KL_c is the reference's analytic KL of the categorical posteriors to uniform
(`kl_categorical_uniform`) or, optionally, a Monte-Carlo estimate of the KL between
the relaxed (Concrete) posteriors and relaxed uniform priors (`kl_concrete_uniform`).
The Gumbel-softmax temperature is a constant or an annealed schedule (`temperature_value`).

An option that is not the paper's: a category balance term, the KL of the batch's aggregate
categorical posterior q(c) = mean_x q(c | x) to uniform (`kl_marginal_uniform`), weighted by
`category_balance` (0, off, by default). KL_c = I(x; c) + KL(q(c) || U) over a batch, so the capacity
term alone lets the categories' sizes drift apart while KL_c stays at its target; this term asks
for categories of equal size (as the digits of MNIST nearly are).

Another: a latent independence term, a Gaussian estimate of the mutual information between the
continuous and the discrete latents under the batch's aggregate posterior (`mi_continuous_discrete`),
weighted by `latent_independence` (0, off, by default). The paper's prior p(z) p(c) makes z and c
independent, but the capacity terms only hold each KL at its target, so nothing stops z from
carrying what the categories should (the reading it was built to test on MNIST, where the digits
get cut along style; `mi_continuous_discrete` says what its estimate showed). The term asks that
the continuous code be distributed alike within every category.

All functions take and return tensors; batch statistics are means over the
batch, as in the reference code.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from jointvae_tf.model.latents import Anneal, Capacity

tfd = tfp.distributions


# The decoder's observation model p(x | z). The decoder outputs logits l [batch, H, W, C]; per likelihood:
#   bernoulli             Bernoulli(logits=l); image = its mean sigmoid(l). The reference's (binary cross-entropy).
#   gaussian              Normal(loc=sigmoid(l), scale=GAUSSIAN_SCALE); image = sigmoid(l). Fixed variance 1/2:
#                         -log p = (x - sigmoid(l))^2 + log(pi)/2 per pixel, the squared error plus a constant.
#   laplace               Laplace(loc=sigmoid(l), scale=LAPLACE_SCALE); image = sigmoid(l). Fixed scale 1/2
#                         (variance 1/2, as the gaussian's): -log p = 2 |x - sigmoid(l)| per pixel, no constant.
#   continuous_bernoulli  ContinuousBernoulli(logits=l), the normalised density on [0, 1] (Loaiza-Ganem &
#                         Cunningham 2019); image = its mean 1/(1 - exp(-l)) - 1/l, which is not sigmoid(l).
LIKELIHOODS = ("bernoulli", "gaussian", "laplace", "continuous_bernoulli")
GAUSSIAN_SCALE = math.sqrt(0.5)
LAPLACE_SCALE = 0.5
# Likelihoods whose mean image is sigmoid(logits) (the decoder's output layer is then a sigmoid).
SIGMOID_MEAN_LIKELIHOODS = ("bernoulli", "gaussian", "laplace")


def check_likelihood(likelihood) -> None:
    """A one-line ValueError unless `likelihood` is one of LIKELIHOODS."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")


def likelihood_distribution(logits: tf.Tensor, likelihood: str = "bernoulli") -> tfd.Distribution:
    """p(x | z) as a tfd distribution over pixels, batch shape = logits' shape [batch, H, W, C] (see LIKELIHOODS)."""
    check_likelihood(likelihood)
    if likelihood == "bernoulli":
        return tfd.Bernoulli(logits=logits, dtype=logits.dtype)
    if likelihood == "gaussian":
        return tfd.Normal(loc=tf.sigmoid(logits), scale=tf.constant(GAUSSIAN_SCALE, logits.dtype))
    if likelihood == "laplace":
        return tfd.Laplace(loc=tf.sigmoid(logits), scale=tf.constant(LAPLACE_SCALE, logits.dtype))
    return tfd.ContinuousBernoulli(logits=logits)


def negative_log_likelihood(images: tf.Tensor, logits: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """-log p(x | z) per pixel, in nats.

    Args:
      images: targets x in [0, 1], [batch, height, width, channels].
      logits: decoder logits, same shape (their meaning per likelihood: see LIKELIHOODS).
      likelihood: one of LIKELIHOODS.

    Returns:
      [batch, height, width, channels]. "bernoulli" is the reference's binary cross-entropy on
      logits (`tf.nn.sigmoid_cross_entropy_with_logits`, bit for bit as before; it equals
      -tfd.Bernoulli(logits).log_prob(x) up to rounding). The others are -log_prob of
      `likelihood_distribution`.
    """
    check_likelihood(likelihood)
    images = tf.convert_to_tensor(images, dtype=logits.dtype)
    if likelihood == "bernoulli":
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    return -likelihood_distribution(logits, likelihood).log_prob(images)


def likelihood_mean(logits: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """The image the decoder shows: the mean of p(x | z), [batch, H, W, C] in [0, 1] (see LIKELIHOODS)."""
    check_likelihood(likelihood)
    if likelihood in SIGMOID_MEAN_LIKELIHOODS:
        return tf.sigmoid(logits)
    return likelihood_distribution(logits, likelihood).mean()


def reconstruction_loss(images: tf.Tensor, logits: tf.Tensor, likelihood: str = "bernoulli") -> tf.Tensor:
    """Negative log-likelihood of the images under the decoder.

    Args:
      images: targets in [0, 1], [batch, height, width, channels].
      logits: decoder logits (pre-sigmoid), same shape.
      likelihood: one of LIKELIHOODS (default: the reference's Bernoulli).

    Returns:
      Scalar: `negative_log_likelihood` summed over pixels and channels, mean over the batch (nats per image).
    """
    per_pixel = negative_log_likelihood(images, logits, likelihood)
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


def kl_marginal_uniform(logits: tf.Tensor | Sequence[tf.Tensor]) -> tf.Tensor:
    """KL of the batch's aggregate categorical posterior to uniform: KL(mean_b softmax(logits_b) || U_K).

    Args:
      logits: one [batch, K] tensor, or a list of them (one per discrete latent).

    Returns:
      For one tensor a scalar, for a list a [num_discrete] vector: sum_k m_k log(K m_k) with
      m = the batch mean of softmax(logits) [K] (computed in log space, so empty categories
      contribute 0). It lies in [0, log K]: 0 when the categories are used equally over the
      batch, log K when every image puts all its mass on one category.
    """
    if isinstance(logits, (list, tuple)):
        if not logits:
            return tf.zeros([0])
        return tf.stack([kl_marginal_uniform(l) for l in logits])
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    batch = tf.cast(tf.shape(logits)[0], log_probs.dtype)
    log_marginal = tf.reduce_logsumexp(log_probs, axis=0) - tf.math.log(batch)
    num_categories = tf.cast(tf.shape(logits)[-1], log_probs.dtype)
    return tf.reduce_sum(tf.exp(log_marginal) * (log_marginal + tf.math.log(num_categories)))


def mi_continuous_discrete(mean: tf.Tensor, log_var: tf.Tensor,
                           logits: tf.Tensor | Sequence[tf.Tensor]) -> tf.Tensor:
    """Gaussian estimate of I(z; c) under the batch's aggregate posterior, in nats.

    Over a batch of B images, q(z | c=k) = sum_b w_bk q(z | x_b) with w_bk = p_bk / sum_b' p_b'k
    (p_bk = softmax(logits)_bk) and q(z) = mean_b q(z | x_b). Each is replaced, per dimension, by
    the Gaussian of its mean and variance (m_k, v_k and m, v), so
    I(z; c) = sum_k q(c=k) KL(q(z | k) || q(z)) ~ sum_k q_k sum_d KL(N(m_kd, v_kd) || N(m_d, v_d)),
    with q_k = mean_b p_bk. It is 0 when every category sees the same first two moments of z
    (for instance when the posteriors over c do not depend on the image), and it grows as z
    tells the categories apart. On a batch it is biased upwards: each category's moments come
    from few images (about B / K), so even independent codes score above 0, more so with more
    confident categories and more active dimensions of z. Measured on MNIST test digits: 0.31 to
    0.58 nats as the mean over batches of 64, 0.013 to 0.040 over all 10,000, for models whose
    categories find the digits (88.7%) or not (55% to 72%).

    Args:
      mean, log_var: q(z | x) [batch, cont].
      logits: one [batch, K] tensor, or a list of them (one per discrete latent).

    Returns:
      For one tensor a scalar, for a list a [num_discrete] vector (each latent against z).
    """
    if isinstance(logits, (list, tuple)):
        if not logits:
            return tf.zeros([0])
        return tf.stack([mi_continuous_discrete(mean, log_var, l) for l in logits])
    probs = tf.nn.softmax(logits, axis=-1)
    second = tf.exp(log_var) + tf.square(mean)  # E[z^2 | x_b]
    m = tf.reduce_mean(mean, axis=0)  # [cont]
    v = tf.reduce_mean(second, axis=0) - tf.square(m)
    weights = probs / (tf.reduce_sum(probs, axis=0, keepdims=True) + _MI_EPSILON)  # [batch, K], columns sum to 1
    m_k = tf.einsum("bk,bd->kd", weights, mean)
    v_k = tf.maximum(tf.einsum("bk,bd->kd", weights, second) - tf.square(m_k), _MI_EPSILON)
    kl = 0.5 * ((v_k + tf.square(m_k - m)) / v - 1.0 + tf.math.log(v / v_k))  # [K, cont]
    return tf.reduce_sum(tf.reduce_mean(probs, axis=0)[:, None] * kl)


# Floor of a category's z variance and of its total weight in `mi_continuous_discrete` (a category
# no image of the batch uses, or a dimension every image of a category puts at one point).
_MI_EPSILON = 1e-6


def check_term_weight(name: str, value) -> None:
    """A one-line ValueError unless the weight `value` of the optional term `name` is a finite number >= 0."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{name} must be a finite number >= 0 (0: off), got {value!r}")


def kl_concrete_uniform(
    logits: tf.Tensor | Sequence[tf.Tensor],
    log_samples: tf.Tensor | Sequence[tf.Tensor],
    temperature,
) -> tf.Tensor:
    """Monte-Carlo KL of relaxed (Concrete) posteriors to relaxed uniform priors at the same temperature.

    KL(RelaxedOneHotCategorical(T, logits) || RelaxedOneHotCategorical(T, uniform logits)),
    estimated by log q(x) - log p(x) at the samples the decoder gets, with tfp's log
    densities. They are evaluated in log space, on `tfd.ExpRelaxedOneHotCategorical`
    (x = log of the relaxed one-hot sample y): a KL is invariant under a bijection of the
    sample space such as y = exp(x), so this is the KL of the relaxed samples, and the
    log-space density stays finite where components of y underflow to 0 at low T.
    Gradients flow through the densities and, reparameterised, through the samples.

    Unlike the categorical KL, this one is not bounded by log K (it grows without bound
    as T falls and the posterior sharpens).

    Args:
      logits: one [batch, K] tensor, or a list of them (one per discrete latent).
      log_samples: the same structure: x ~ ExpRelaxedOneHotCategorical(T, logits), [batch, K]
        (log-probabilities of the relaxed one-hot samples).
      temperature: T > 0, a scalar (float or tensor).

    Returns:
      For one tensor a scalar, for a list a [num_discrete] vector: the batch mean of
      log q(x) - log p(x). KL_c is the sum over discrete latents.
    """
    if isinstance(logits, (list, tuple)):
        if not logits:
            return tf.zeros([0])
        return tf.stack([kl_concrete_uniform(l, x, temperature) for l, x in zip(logits, log_samples)])
    temperature = tf.cast(temperature, logits.dtype)
    posterior = tfd.ExpRelaxedOneHotCategorical(temperature, logits=logits)
    prior = tfd.ExpRelaxedOneHotCategorical(temperature, logits=tf.zeros_like(logits))
    return tf.reduce_mean(posterior.log_prob(log_samples) - prior.log_prob(log_samples))


def temperature_value(temperature: float | Anneal, step) -> tf.Tensor:
    """The Gumbel-softmax temperature T(t): a constant, or an `Anneal` schedule.

    T(t) = start * (end / start) ** (min(t, num_iters) / num_iters): exponential from `start`
    at t = 0 to `end` at t = num_iters, then held at `end`.

    Args:
      temperature: a float (constant) or an `Anneal`.
      step: t, the training iteration (counted from 1 at the first step); scalar, any numeric dtype.

    Returns:
      Scalar float32.
    """
    if not isinstance(temperature, Anneal):
        return tf.constant(float(temperature), tf.float32)
    fraction = tf.minimum(tf.cast(step, tf.float32), float(temperature.num_iters)) / float(temperature.num_iters)
    return temperature.start * tf.pow(temperature.end / temperature.start, fraction)


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
    concrete_log_samples: Sequence[tf.Tensor] | None = None,
    temperature=None,
    likelihood: str = "bernoulli",
    category_balance: float = 0.0,
    latent_independence: float = 0.0,
) -> dict[str, tf.Tensor]:
    """All terms of the capacity-controlled objective.

    Args:
      images: [batch, height, width, channels] in [0, 1].
      logits: decoder logits, same shape.
      mean, log_var: [batch, cont], or None without continuous latents.
      category_logits: one [batch, K_i] per discrete latent (may be empty).
      step: t of the capacity schedules.
      cont_capacity, disc_capacity: the two schedules.
      concrete_log_samples: None for the reference's analytic categorical KL_c, whose target
        C_c(t) is clipped at sum(log K_i), the largest KL it can reach. Or the log-space relaxed
        samples [batch, K_i] the decoder got (one per discrete latent, drawn at `temperature`)
        for the Monte-Carlo concrete KL_c (`kl_concrete_uniform`); that KL is not bounded by
        sum(log K_i), so C_c(t) is then clipped only by the schedule's max.
      temperature: T of `concrete_log_samples` (needed with them only).
      likelihood: the decoder's observation model, one of LIKELIHOODS (`reconstruction_loss`).
      category_balance: weight of the category balance term, `kl_marginal_uniform` summed over
        discrete latents, in the loss (0: off, the reference's objective).
      latent_independence: weight of the latent independence term, `mi_continuous_discrete`
        summed over discrete latents (0: off, the reference's objective).

    Returns:
      dict with scalars "loss", "reconstruction_loss", "kl_continuous", "kl_discrete",
      "capacity_continuous", "capacity_discrete", "kl_discrete_marginal" (the balance term's KL,
      reported whatever its weight), "mi_continuous_discrete" (the
      independence term's estimate, reported whatever its weight; 0 without both kinds of
      latent) and vectors "kl_continuous_per_dim" [cont], "kl_discrete_per_latent" [num_discrete].
    """
    recon = reconstruction_loss(images, logits, likelihood)
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
        if concrete_log_samples is None:
            kl_c_latents = kl_categorical_uniform(list(category_logits))
            max_disc = sum(math.log(int(l.shape[-1])) for l in category_logits)
        else:
            kl_c_latents = kl_concrete_uniform(list(category_logits), list(concrete_log_samples), temperature)
            max_disc = None
        kl_c = tf.reduce_sum(kl_c_latents)
        c_c = capacity_value(disc_capacity, step, upper=max_disc)
        loss += disc_capacity.gamma * tf.abs(kl_c - c_c)
        kl_marginal = tf.reduce_sum(kl_marginal_uniform(list(category_logits)))
        if category_balance:
            loss += category_balance * kl_marginal
    else:
        kl_c_latents, kl_c, c_c, kl_marginal = tf.zeros([0]), tf.zeros([]), tf.zeros([]), tf.zeros([])
    if mean is not None and category_logits:
        mutual_information = tf.reduce_sum(mi_continuous_discrete(mean, log_var, list(category_logits)))
        if latent_independence:
            loss += latent_independence * mutual_information
    else:
        mutual_information = tf.zeros([])
    terms.update(
        loss=loss,
        kl_continuous=kl_z,
        kl_discrete=kl_c,
        capacity_continuous=c_z,
        capacity_discrete=c_c,
        kl_discrete_marginal=kl_marginal,
        mi_continuous_discrete=mutual_information,
        kl_continuous_per_dim=kl_z_dims,
        kl_discrete_per_latent=kl_c_latents,
    )
    return terms
