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
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def replica_seed(seed: tf.Tensor) -> tf.Tensor:
    """Folds the current replica's id into a stateless seed [2] so that replicas draw different noise."""
    context = tf.distribute.get_replica_context()
    replica_id = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(replica_id, tf.int32))


class _StatelessSampler(keras.layers.Layer):
    """Shared plumbing: a layer-owned SeedGenerator and the `deterministic` switch."""

    def __init__(self, seed: int | None = None, deterministic: bool = False, **kwargs):
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
    """

    def __init__(self, temperature: float = 0.67, **kwargs):
        super().__init__(**kwargs)
        temperature = float(temperature)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def call(self, logits, training=None, seed=None):
        if not self._sampling(training):
            return tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1], dtype=logits.dtype)
        relaxed = tfd.RelaxedOneHotCategorical(self.temperature, logits=logits)
        return relaxed.sample(seed=self._stateless_seed(seed))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
