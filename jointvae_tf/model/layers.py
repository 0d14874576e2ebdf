"""Sampling layers: the reparameterised Gaussian and the Gumbel-softmax relaxation.

Both are Keras layers around tensorflow-probability distributions (`tfd` only:
`tfp.layers` do not accept Keras 3 inputs). In training they draw a
differentiable sample; at inference they return the distribution's mode
(the mean, or the one-hot argmax), as the reference does in `eval()` mode.

Noise comes from a stateless seed. `JointVAE.train_step` passes one derived from
the model seed, the optimizer's iteration and the replica id, so every replica of
a `tf.distribute` strategy draws different noise and a restored run repeats its
noise. Called without a seed in training, a layer draws one from its own
`keras.random.SeedGenerator`.

Both always compute in float32 (their dtype policy is "float32" unless one is passed),
whatever the global Keras policy: under mixed precision ("mixed_bfloat16",
"mixed_float16") Keras casts their inputs to float32, as tfp's distributions need
(they refuse bfloat16) and as sampling, the KL terms and the temperature should be.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from jointvae_tf.model import losses

tfd = tfp.distributions


def replica_seed(seed: tf.Tensor) -> tf.Tensor:
    """Folds the current replica's id into a stateless seed [2] so that replicas draw different noise."""
    context = tf.distribute.get_replica_context()
    replica_id = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(replica_id, tf.int32))


def _one_hot_argmax(values: tf.Tensor) -> tf.Tensor:
    """one-hot(argmax) over the last axis of values [batch, K], in their dtype."""
    return tf.one_hot(tf.argmax(values, axis=-1), tf.shape(values)[-1], dtype=values.dtype)


class _StatelessSampler(keras.layers.Layer):
    """Shared plumbing: a layer-owned SeedGenerator, the `deterministic` switch and the float32 policy."""

    def __init__(self, seed: int | None = None, deterministic: bool = False, **kwargs):
        kwargs.setdefault("dtype", "float32")  # not the global (possibly mixed) policy: see the module docstring
        super().__init__(**kwargs)
        self.seed = seed
        self.deterministic = bool(deterministic)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _stateless_seed(self, seed) -> tf.Tensor:
        if seed is None:
            seed = replica_seed(tf.cast(self.seed_generator.next(), tf.int32))
        return tf.cast(seed, tf.int32)

    def _sampling(self, training) -> bool:
        return bool(training) and not self.deterministic

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed, deterministic=self.deterministic)
        return config


@keras.saving.register_keras_serializable(package="jointvae_tf")
class GaussianSampler(_StatelessSampler):
    """z ~ N(mean, exp(log_var)), reparameterised, via `tfd.Normal`.

    Call with `[mean, log_var]`, each [batch, cont]; returns z [batch, cont]:
    a sample in training, the mean at inference (or when `deterministic`).
    """

    def call(self, inputs, training=None, seed=None):
        mean, log_var = inputs
        if not self._sampling(training):
            return mean
        posterior = tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_var))
        return posterior.sample(seed=self._stateless_seed(seed))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="jointvae_tf")
class GumbelSoftmaxSampler(_StatelessSampler):
    """c ~ RelaxedOneHotCategorical(temperature, logits) (Gumbel-softmax), via tfd.

    Call with logits [batch, K]; returns [batch, K]: a relaxed one-hot sample in
    training, one-hot(argmax(logits)) at inference (or when `deterministic`).

    The sample is drawn in log space, x ~ ExpRelaxedOneHotCategorical(T, logits), and
    returned as y = exp(x) (the same values, bit for bit, as RelaxedOneHotCategorical's
    sample for the same seed); `return_log_sample=True` also returns x, for the concrete KL.

    Args:
      temperature: T > 0, used when a call passes none (`JointVAE` passes its current,
        possibly annealed, T to every call).
      straight_through: in training, return one-hot(argmax(y)) in the forward pass with the
        gradient of the relaxed y (straight-through Gumbel-softmax): y_hard + (y - stop_gradient(y)),
        exactly one-hot in value.
    """

    def __init__(self, temperature: float = 0.67, straight_through: bool = False, **kwargs):
        super().__init__(**kwargs)
        temperature = float(temperature)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.straight_through = bool(straight_through)

    def call(self, logits, training=None, seed=None, temperature=None, return_log_sample=False):
        """logits [batch, K] -> [batch, K]; with `return_log_sample`, (that, x [batch, K] or None at inference).

        `temperature` (a scalar float or tensor) overrides the constructor's for this call.
        """
        if not self._sampling(training):
            mode = _one_hot_argmax(logits)
            return (mode, None) if return_log_sample else mode
        temperature = self.temperature if temperature is None else tf.cast(temperature, logits.dtype)
        log_sample = tfd.ExpRelaxedOneHotCategorical(temperature, logits=logits).sample(
            seed=self._stateless_seed(seed))
        sample = tf.exp(log_sample)
        if self.straight_through:
            hard = _one_hot_argmax(sample)
            # Forward: hard + 0 (x - x is exactly 0), so exactly one-hot; backward: the gradient of `sample`.
            sample = hard + (sample - tf.stop_gradient(sample))
        return (sample, log_sample) if return_log_sample else sample

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature, straight_through=self.straight_through)
        return config


@keras.saving.register_keras_serializable(package="jointvae_tf")
class LikelihoodMean(keras.layers.Layer):
    """The decoder's image: the mean of p(x | z) given decoder logits (`losses.likelihood_mean`).

    Call with logits [batch, H, W, C]; returns images [batch, H, W, C] in [0, 1]. Computes in
    float32 under any dtype policy. The decoder uses it for likelihoods whose mean is not
    sigmoid(logits) (the continuous Bernoulli); for the others it keeps a plain sigmoid.
    """

    def __init__(self, likelihood: str = "bernoulli", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        losses.check_likelihood(likelihood)
        self.likelihood = likelihood

    def call(self, logits):
        return losses.likelihood_mean(tf.cast(logits, tf.float32), self.likelihood)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(likelihood=self.likelihood)
        return config
