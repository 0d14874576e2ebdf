"""JointVAE: the Keras model that wires networks, samplers and the loss together.

    images [batch, H, W, C] -> encoder -> mean, log_var [batch, cont], logits_i [batch, K_i]
      -> GaussianSampler / GumbelSoftmaxSampler -> latent [batch, cont + sum K_i]
      -> decoder -> logits [batch, H, W, C] -> losses.jointvae_loss

`train_step` follows the reference optimisation: the capacity schedules (and an
annealed Gumbel-softmax temperature) run on the optimizer's iteration count t (from 1
at the first step, so they survive a checkpoint restore), the loss is back-propagated
divided by H*W (the reference normalises by the number of pixels) and by the number of
replicas (Keras sums gradients across replicas), and Adam uses epsilon 1e-8. Metrics
report the loss unscaled, and the temperature of the step.

Mixed precision is Keras' own: build the model under a global dtype policy
(`keras.config.set_dtype_policy("mixed_bfloat16")` or "mixed_float16", or the
`precision_policy` context manager). The networks then compute in bfloat16/float16 with
float32 variables; the encoder's outputs and the decoder's logits are cast to float32,
so sampling, the KL terms, the capacities and the reconstruction log-likelihood are
float32. Under "mixed_float16", `compile` wraps the optimizer in a
`keras.optimizers.LossScaleOptimizer` (Keras does), and `train_step` scales the loss
with `optimizer.scale_loss` (the identity for other optimizers); its `apply_gradients`
unscales the gradients and skips steps whose gradients are not finite.
"""

from __future__ import annotations

import contextlib
import random
import re
from typing import Any, Sequence

import keras
import tensorflow as tf

from jointvae_tf.model import losses
from jointvae_tf.model.latents import Anneal, Capacity, LatentSpec, parse_temperature
from jointvae_tf.model.layers import GaussianSampler, GumbelSoftmaxSampler, replica_seed
from jointvae_tf.model.networks import build_decoder, build_decoder_logits, build_encoder, validate_image_shape

DEFAULT_CAPACITY = Capacity(0.0, 5.0, 25000, 30.0)
DEFAULT_LEARNING_RATE = 5e-4
# The reference uses PyTorch's Adam (epsilon 1e-8); Keras' default is 1e-7.
ADAM_EPSILON = 1e-8
# Measured on a 2-core CPU (bench/train_throughput.py): XLA made training slower than
# TF's default oneDNN kernels, and running several steps per tf.function call removes
# most of the per-step Python overhead.
DEFAULT_JIT_COMPILE = False
DEFAULT_STEPS_PER_EXECUTION = 10

METRIC_NAMES = (
    "loss",
    "reconstruction_loss",
    "kl_continuous",
    "kl_discrete",
    "capacity_continuous",
    "capacity_discrete",
)
# Reported as well by models with discrete latents: the Gumbel-softmax temperature of the step.
TEMPERATURE_METRIC = "temperature"
# Reported as well by models trained with a category balance term: KL(q(c) || U) over the batch.
BALANCE_METRIC = "kl_discrete_marginal"
# Reported as well by models trained with a latent independence term: the estimate of I(z; c) over the batch.
INDEPENDENCE_METRIC = "mi_continuous_discrete"
DISCRETE_KLS = ("categorical", "concrete")
# Keras dtype policies a JointVAE is built and trained under (see `precision_policy`).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check_precision(precision) -> None:
    """A one-line ValueError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be float32, mixed_bfloat16 or mixed_float16, got {precision!r}")


@contextlib.contextmanager
def precision_policy(precision: str):
    """Sets Keras' global dtype policy to `precision` (one of PRECISIONS) for the block, then restores the previous one.

    Build (and compile) a JointVAE inside it: its layers keep the policy they were built
    with, so training may run after the block, and later models are not affected.
    """
    check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_options(straight_through, discrete_kl) -> None:
    """One-line ValueErrors for a JointVAE's `straight_through` (a bool) and `discrete_kl` (one of DISCRETE_KLS)."""
    if not isinstance(straight_through, bool):
        raise ValueError(f"straight_through must be True or False, got {straight_through!r}")
    if discrete_kl not in DISCRETE_KLS:
        raise ValueError(f"discrete_kl must be 'categorical' or 'concrete', got {discrete_kl!r}")


_RANGE_ERROR = "images must be finite values in [0, 1] (or uint8 0..255);"


def pixel_range_checked(images: tf.Tensor) -> tf.Tensor:
    """`images` (float32), with an assertion that every value is finite and in [0, 1].

    One fused comparison and reduction per batch; the statistics for the message are
    computed only when the check fails. NaN fails both comparisons, so it is caught too.
    """
    valid = tf.reduce_all((images >= 0.0) & (images <= 1.0))

    def report():
        finite = tf.math.is_finite(images)
        values = tf.boolean_mask(images, finite)
        assertion = tf.debugging.Assert(False, [
            _RANGE_ERROR, "found values in", tf.reduce_min(values), tf.reduce_max(values),
            "non-finite values:", tf.math.count_nonzero(~finite),
        ])
        with tf.control_dependencies([assertion]):
            return tf.identity(valid)

    checked = tf.cond(valid, lambda: valid, report)
    with tf.control_dependencies([checked]):
        return tf.identity(images)


@contextlib.contextmanager
def _image_range_errors():
    """Turns the failed graph assertion of `pixel_range_checked` into a one-line ValueError."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        if _RANGE_ERROR not in error.message:
            raise
        found = re.search(r"found values in\]? \[?(\S+?)\]? \[?(\S+?)\]? \[?non-finite values:\]? \[?(\d+)",
                          error.message)
        low, high, nonfinite = found.groups() if found else ("?", "?", "?")
        raise ValueError(
            f"images must be finite values in [0, 1] (or uint8 0..255): a batch has values in [{low}, {high}] "
            f"and {nonfinite} non-finite values (scale images to [0, 1] and remove NaN/inf)"
        ) from None


def default_optimizer(learning_rate: float = DEFAULT_LEARNING_RATE) -> keras.optimizers.Optimizer:
    """Adam as the reference configures it (epsilon 1e-8)."""
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=ADAM_EPSILON)


@keras.saving.register_keras_serializable(package="jointvae_tf")
class JointVAE(keras.Model):
    """Joint continuous and discrete VAE with capacity-controlled KL terms (Dupont, 2018).

    Args:
      image_shape: (height, width, channels) with height = width in networks.SUPPORTED_SIZES (32, 64, 128, 256).
      latent_spec: a `LatentSpec`, a string like "cont=10,disc=10" or a dict {"cont": 10, "disc": [10]}.
      temperature: Gumbel-softmax temperature of the discrete samplers: a float (constant), or an
        `Anneal(start, end, num_iters)` (or a 3-sequence, or "start,end,num_iters") decaying
        exponentially with the training step t, as the capacities grow with it. Training reports
        the temperature of each step as the metric "temperature" (like the capacities, the
        epoch's mean in Keras' logs).
      cont_capacity, disc_capacity: `Capacity(min, max, num_iters, gamma)` schedules (or 4-sequences).
      seed: base of the stateless sampling noise in `train_step`; random when None.
      straight_through: the discrete samplers' training output is one-hot(argmax(relaxed sample)),
        with the relaxed sample's gradient (straight-through Gumbel-softmax).
      discrete_kl: "categorical" (the reference's analytic KL of the categorical posteriors to
        uniform, whose capacity target is clipped at sum(log K_i)) or "concrete" (a Monte-Carlo
        estimate of KL(RelaxedOneHotCategorical(T, logits) || RelaxedOneHotCategorical(T, uniform))
        at the sample the decoder gets, see `losses.kl_concrete_uniform`; it is not bounded by
        sum(log K_i), so the capacity target is clipped only by its schedule's max). Evaluation
        (`evaluate`, `test_step`; no samples are drawn there) reports the categorical KL and
        loss term under both, so evaluation numbers stay comparable across the two.
      likelihood: the decoder's observation model p(x | z), one of `losses.LIKELIHOODS`:
        "bernoulli" (the reference's binary cross-entropy), "gaussian" (fixed scale sqrt(1/2):
        the squared error plus a constant), "laplace" (fixed scale 1/2: twice the absolute error)
        or "continuous_bernoulli" (normalised on [0, 1]). The decoder's logits are Bernoulli or
        continuous-Bernoulli logits, or sigmoid(logits) is the Gaussian/Laplace mean; `decode`,
        `reconstruct` and `sample` return the likelihood's mean image (sigmoid(logits), except for
        the continuous Bernoulli, whose mean is 1/(1 - exp(-logits)) - 1/logits). The
        reconstruction loss is -log p(x | z) in nats, summed over pixels.
      category_balance: weight (>= 0) of a term that is not the paper's, the KL of the batch's
        aggregate categorical posterior to uniform (`losses.kl_marginal_uniform`), which asks for
        categories of equal size; 0 (the default) leaves the reference's objective. When it is on,
        training and evaluation report that KL as the metric "kl_discrete_marginal".
      latent_independence: weight (>= 0) of a term that is not the paper's, a Gaussian estimate of
        the mutual information between the continuous and discrete latents under the batch's
        aggregate posterior (`losses.mi_continuous_discrete`), which asks that z be distributed
        alike within every category, so that what tells the categories apart is left to c; 0 (the
        default) leaves the reference's objective. When it is on (with both kinds of latent),
        training and evaluation report the estimate as the metric "mi_continuous_discrete".
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 1),
        latent_spec: LatentSpec | str | dict = LatentSpec(10, (10,)),
        temperature: float = 0.67,
        cont_capacity: Capacity | Sequence[float] = DEFAULT_CAPACITY,
        disc_capacity: Capacity | Sequence[float] = DEFAULT_CAPACITY,
        seed: int | None = None,
        straight_through: bool = False,
        discrete_kl: str = "categorical",
        likelihood: str = "bernoulli",
        category_balance: float = 0.0,
        latent_independence: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = validate_image_shape(image_shape)
        self.latent_spec = LatentSpec.coerce(latent_spec)
        self.cont_capacity = Capacity.coerce(cont_capacity)
        self.disc_capacity = Capacity.coerce(disc_capacity)
        self.seed = random.randrange(2**31 - 1) if seed is None else int(seed)
        self.temperature = parse_temperature(temperature)
        check_options(straight_through, discrete_kl)
        self.straight_through, self.discrete_kl = straight_through, discrete_kl
        losses.check_likelihood(likelihood)
        self.likelihood = likelihood
        losses.check_term_weight("category_balance", category_balance)
        losses.check_term_weight("latent_independence", latent_independence)
        self.category_balance = float(category_balance)
        self.latent_independence = float(latent_independence)
        spec = self.latent_spec
        # The samplers' own temperature; training passes the current one to every call.
        initial_temperature = self.temperature.start if isinstance(self.temperature, Anneal) else self.temperature

        self.encoder = build_encoder(self.image_shape, spec)
        self.decoder_logits = build_decoder_logits(self.image_shape, spec)
        self.decoder = build_decoder(self.decoder_logits, likelihood=likelihood)
        self.gaussian_sampler = GaussianSampler(seed=self.seed, name="gaussian_sampler") if spec.continuous else None
        self.gumbel_samplers = [
            GumbelSoftmaxSampler(initial_temperature, straight_through=straight_through, seed=self.seed + 1 + i,
                                 name=f"gumbel_sampler_{i}")
            for i in range(spec.num_discrete)
        ]
        metric_names = METRIC_NAMES + ((TEMPERATURE_METRIC,) if spec.num_discrete else ())
        if spec.num_discrete and self.category_balance:
            metric_names += (BALANCE_METRIC,)
        if spec.num_discrete and spec.continuous and self.latent_independence:
            metric_names += (INDEPENDENCE_METRIC,)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in metric_names}
        self.built = True

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": list(self.image_shape),
            "latent_spec": self.latent_spec.to_dict(),
            "temperature": list(self.temperature) if isinstance(self.temperature, Anneal) else self.temperature,
            "cont_capacity": list(self.cont_capacity),
            "disc_capacity": list(self.disc_capacity),
            "seed": self.seed,
            "straight_through": self.straight_through,
            "discrete_kl": self.discrete_kl,
            "likelihood": self.likelihood,
            "category_balance": self.category_balance,
            "latent_independence": self.latent_independence,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "JointVAE":
        return cls(**config)

    def compile(
        self,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        jit_compile: bool | str = DEFAULT_JIT_COMPILE,
        steps_per_execution: int | None = None,
        **kwargs,
    ):
        """Like `keras.Model.compile`, with the measured-fastest defaults and the reference's Adam.

        The loss is built in; `loss=` is not accepted. `steps_per_execution` defaults to
        10 on one replica and 1 on several: Keras 3 cannot run a multi-step loop under a
        multi-replica strategy (keras-team/keras#19246, "You must feed a value for
        placeholder tensor"), so asking for more than 1 there is refused.
        """
        if "loss" in kwargs:
            raise ValueError("JointVAE computes its own loss: compile() takes no loss=")
        replicas = self.distribute_strategy.num_replicas_in_sync
        if steps_per_execution is None:
            steps_per_execution = DEFAULT_STEPS_PER_EXECUTION if replicas == 1 else 1
        elif steps_per_execution > 1 and replicas > 1:
            raise ValueError(
                f"steps_per_execution={steps_per_execution} is not supported with {replicas} replicas "
                "(Keras 3 fails on it, keras-team/keras#19246): use 1"
            )
        super().compile(
            optimizer=default_optimizer() if optimizer is None else optimizer,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            **kwargs,
        )

    def get_compile_config(self):
        """Keras' compile config, with "loss_scale": True when the optimizer is a LossScaleOptimizer (mixed_float16)."""
        config = super().get_compile_config()
        if config and isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            config["loss_scale"] = True
        return config

    def compile_from_config(self, config):
        """Re-compiles a loaded model (so `.keras` files restore the optimizer and its iteration count).

        The optimizer is wrapped in a LossScaleOptimizer exactly when the saved one was, whatever
        the loading process' dtype policy, so that the saved optimizer variables fit it: a
        mixed_float16 model loads in a float32 process (still scaling its loss), and a float32
        or mixed_bfloat16 one under mixed_float16 (without loss scaling: compile it again for that).
        """
        config = keras.saving.deserialize_keras_object(config)
        if config.get("loss") is not None:
            raise ValueError(f"JointVAE computes its own loss, found loss={config['loss']!r} in the compile config")
        config.pop("loss", None)
        if config.pop("loss_scale", False) and config.get("optimizer") is not None:
            config["optimizer"] = keras.optimizers.LossScaleOptimizer(keras.optimizers.get(config["optimizer"]))
        self.compile(**config, auto_scale_loss=False)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        """TensorFlow checkpoint dependencies, without the optimizer: checkpoints hold it beside the model.

        `checkpoints.Checkpointer` saves the optimizer as a root object of its own (for a
        LossScaleOptimizer, the inner optimizer, and the loss scale apart); a second path to it
        through the model would tie the checkpoint's layout to whether the loss is scaled.
        """
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children.pop("optimizer", None)
        return children

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ---------------------------------------------------------------- checks
    def _check_images(self, images, check_range: bool = False) -> tf.Tensor:
        """Images as float32 [batch, H, W, C] in [0, 1]: uint8 (0..255) is scaled by 1/255.

        With `check_range`, a graph-side check (one reduction per batch) refuses values
        outside [0, 1] and non-finite ones before they reach the weights; `fit` and
        `evaluate` turn it into a one-line ValueError naming the range found.
        """
        images = tf.convert_to_tensor(images)
        shape = images.shape
        if shape.rank != 4 or any(s is not None and s != e for s, e in zip(shape[1:], self.image_shape)):
            got = shape.as_list() if shape.rank is not None else "unknown rank"
            raise ValueError(f"images must have shape [batch, {', '.join(map(str, self.image_shape))}], got {got}")
        if images.dtype == tf.uint8:
            return tf.cast(images, tf.float32) / 255.0
        images = tf.cast(images, tf.float32)
        return pixel_range_checked(images) if check_range else images

    def _check_latent(self, latent) -> tf.Tensor:
        latent = tf.convert_to_tensor(latent, dtype=tf.float32)
        dim = self.latent_spec.latent_dim
        if latent.shape.rank != 2 or latent.shape[-1] != dim:
            raise ValueError(f"latent must have shape [batch, {dim}] for {self.latent_spec}, got {latent.shape.as_list()}")
        return latent

    @staticmethod
    def _unpack(data):
        if isinstance(data, dict):
            return data["images"] if "images" in data else data["image"]
        if isinstance(data, (tuple, list)):
            return data[0]
        return data

    # ------------------------------------------------------------ forward
    def _encode(self, images, training=False):
        """Encoder outputs as (mean or None, log_var or None, [logits_i]), float32 under any dtype policy."""
        outputs = {name: tf.cast(value, tf.float32) for name, value in self.encoder(images, training=training).items()}
        logits = [outputs[f"logits_{i}"] for i in range(self.latent_spec.num_discrete)]
        return outputs.get("mean"), outputs.get("log_var"), logits

    def _decode_logits(self, latent, training=False) -> tf.Tensor:
        """Decoder logits [batch, H, W, C] of latents [batch, latent_dim], float32 under any dtype policy."""
        return tf.cast(self.decoder_logits(latent, training=training), tf.float32)

    def _sample_latent(self, mean, log_var, logits, training=False, seed=None, temperature=None) -> tf.Tensor:
        """Concatenates [z, c_1, ..., c_n] [batch, latent_dim]; see `_sample_latent_and_log_samples`."""
        return self._sample_latent_and_log_samples(mean, log_var, logits, training, seed, temperature)[0]

    def _sample_latent_and_log_samples(self, mean, log_var, logits, training=False, seed=None, temperature=None):
        """([z, c_1, ..., c_n] [batch, latent_dim], log-space relaxed samples [[batch, K_i]] or None).

        `seed` [2] drives the training noise of every sampler, `temperature` (a scalar) is the
        Gumbel-softmax temperature of this step (None: the samplers' own). The log samples are
        the ones behind the c_i the decoder gets; None unless every discrete latent was sampled.
        """
        num_samplers = len(self.gumbel_samplers) + (1 if self.gaussian_sampler else 0)
        seeds = [None] * num_samplers if seed is None else tf.unstack(
            tf.random.experimental.stateless_split(seed, num_samplers)
        )
        parts, log_samples = [], []
        if self.gaussian_sampler is not None:
            parts.append(self.gaussian_sampler([mean, log_var], training=training, seed=seeds.pop(0)))
        for sampler, category_logits in zip(self.gumbel_samplers, logits):
            part, log_sample = sampler(category_logits, training=training, seed=seeds.pop(0),
                                       temperature=temperature, return_log_sample=True)
            parts.append(part)
            log_samples.append(log_sample)
        latent = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
        return latent, (None if not log_samples or any(x is None for x in log_samples) else log_samples)

    def call(self, images, training=False):
        """Reconstructions [batch, H, W, C] in [0, 1] (the posterior mode at inference)."""
        images = self._check_images(images)
        mean, log_var, logits = self._encode(images, training=training)
        latent = self._sample_latent(mean, log_var, logits, training=training)
        return losses.likelihood_mean(self._decode_logits(latent, training=training), self.likelihood)

    def _loss_terms(self, images, training, seed=None, step=None):
        """`losses.jointvae_loss` terms at step t (int or tensor), with "temperature" (T(t), scalar) added."""
        temperature = losses.temperature_value(self.temperature, step)
        mean, log_var, logits = self._encode(images, training=training)
        latent, log_samples = self._sample_latent_and_log_samples(
            mean, log_var, logits, training=training, seed=seed, temperature=temperature)
        recon_logits = self._decode_logits(latent, training=training)
        concrete = log_samples if self.discrete_kl == "concrete" else None
        terms = losses.jointvae_loss(
            images, recon_logits, mean, log_var, logits, step, self.cont_capacity, self.disc_capacity,
            concrete_log_samples=concrete, temperature=temperature, likelihood=self.likelihood,
            category_balance=self.category_balance, latent_independence=self.latent_independence,
        )
        terms[TEMPERATURE_METRIC] = temperature
        return terms

    def _step_seed(self, step) -> tf.Tensor:
        """Stateless seed [2] for this step and replica: model seed, iteration, replica id."""
        seed = tf.stack([tf.constant(self.seed, tf.int32), tf.cast(step, tf.int32)])
        return replica_seed(seed)

    def make_train_function(self, force=False):
        """Keras' training function (for `fit` and `train_on_batch`), with the optimizer built first.

        Without a distribution strategy Keras leaves the optimizer's variables to the first trace of
        the training step, and TensorFlow then traces the step a second time, without creating
        variables: about half of the first call's time.
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; images outside [0, 1] or non-finite stop it with a one-line ValueError."""
        with _image_range_errors():
            return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate`, with `fit`'s check of the images."""
        with _image_range_errors():
            return super().evaluate(*args, **kwargs)

    def train_step(self, data):
        images = self._check_images(self._unpack(data), check_range=True)
        step = self.optimizer.iterations + 1
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        height, width, _ = self.image_shape
        with tf.GradientTape() as tape:
            terms = self._loss_terms(images, training=True, seed=self._step_seed(step), step=step)
            scaled_loss = terms["loss"] / float(height * width * num_replicas)
            # A LossScaleOptimizer (mixed_float16) multiplies by its loss scale; apply_gradients divides it out.
            scaled_loss = self.optimizer.scale_loss(scaled_loss)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_trackers(terms)

    def test_step(self, data):
        images = self._check_images(self._unpack(data), check_range=True)
        step = tf.maximum(self.optimizer.iterations, 1) if self.optimizer is not None else 1
        return self._update_trackers(self._loss_terms(images, training=False, step=step))

    def predict_step(self, data):
        return self(self._unpack(data), training=False)

    def _update_trackers(self, terms):
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker outputs with strategy.reduce("MEAN", v, axis=0),
            # which fails on scalars: give each a batch axis that the reduction removes.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    # ------------------------------------------------------------ public API
    def encode(self, images) -> dict[str, Any]:
        """Posterior parameters of images [batch, H, W, C].

        Returns:
          {"mean": [batch, cont], "log_var": [batch, cont], "logits": [[batch, K_i], ...]}
          (mean and log_var are [batch, 0] without continuous latents).
        """
        images = self._check_images(images)
        mean, log_var, logits = self._encode(images, training=False)
        if mean is None:
            mean = log_var = tf.zeros([tf.shape(images)[0], 0])
        return {"mean": mean, "log_var": log_var, "logits": logits}

    def latent(self, images) -> tf.Tensor:
        """The deterministic latent [batch, latent_dim] of images: [mean, one-hot(argmax c_i)...]."""
        images = self._check_images(images)
        return self._sample_latent(*self._encode(images, training=False), training=False)

    def decode(self, latent) -> tf.Tensor:
        """Images [batch, H, W, C] in [0, 1] from latents [batch, latent_dim] laid out as [z, c_1, ...]."""
        return self.decoder(self._check_latent(latent), training=False)

    def reconstruct(self, images) -> tf.Tensor:
        """Decodes the posterior mode of images [batch, H, W, C]."""
        return self(images, training=False)

    def sample_prior(self, num: int, seed: int | None = None) -> tf.Tensor:
        """Latents [num, latent_dim] from the prior: z ~ N(0, I), each c_i uniform one-hot."""
        num = int(num)
        if num < 1:
            raise ValueError(f"number of samples must be >= 1, got {num}")
        base = tf.constant([random.randrange(2**31 - 1) if seed is None else int(seed), 0], tf.int32)
        seeds = tf.unstack(tf.random.experimental.stateless_split(base, 1 + self.latent_spec.num_discrete))
        parts = []
        if self.latent_spec.continuous:
            parts.append(tf.random.stateless_normal([num, self.latent_spec.continuous], seed=seeds[0]))
        for k, s in zip(self.latent_spec.discrete, seeds[1:]):
            categories = tf.random.stateless_uniform([num], seed=s, maxval=k, dtype=tf.int32)
            parts.append(tf.one_hot(categories, k))
        return tf.concat(parts, axis=-1)

    def sample(self, num: int, seed: int | None = None) -> tf.Tensor:
        """Images [num, H, W, C] decoded from prior samples (reproducible with `seed`)."""
        return self.decode(self.sample_prior(num, seed=seed))
