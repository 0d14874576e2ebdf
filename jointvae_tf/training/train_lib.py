"""Training a JointVAE into a model_dir: configuration -> strategy -> data -> model -> `model.fit`.

`TrainConfig` holds what a user may set; fields left None take the dataset's preset
(`jointvae_tf.training.presets`). `train(config)` resolves it, saves it as model_dir/config.json,
resumes from the latest checkpoint when there is one (refusing a model_dir made for another
model shape), and trains to `steps` global steps with checkpoints, a NaN guard, TensorBoard
logs and pictures. The training binary (`jointvae_tf.train`) only turns flags into a TrainConfig.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from jointvae_tf.training import callbacks as jv_callbacks
from jointvae_tf import fileio, runtime
from jointvae_tf.model import losses, networks
from jointvae_tf.training import checkpoints, distribute, presets
from jointvae_tf.model.latents import Capacity, LatentSpec, parse_temperature
from jointvae_tf.model.jointvae import (DEFAULT_STEPS_PER_EXECUTION, JointVAE, check_options, check_precision,
                               default_optimizer, precision_policy)

log = logging.getLogger("jointvae_tf")


@dataclasses.dataclass
class TrainConfig:
    """What a training run may set. None means: the dataset preset's value (or derived, for steps)."""

    dataset: str = "dsprites"
    model_dir: str = os.path.join("runs", "dsprites")
    data_dir: str | None = None
    manual_dir: str | None = None
    channels: int | None = None
    image_size: int | None = None  # square side the images are resized to (networks.SUPPORTED_SIZES); None: the data's
    preset: str | None = None
    latent_spec: str | None = None
    cont_capacity: str | None = None
    disc_capacity: str | None = None
    temperature: str | float | None = None  # 0.67, or "start,end,num_iters" to anneal (latents.parse_temperature)
    straight_through: bool = False
    discrete_kl: str = "categorical"
    likelihood: str = "bernoulli"  # the decoder's p(x | z): losses.LIKELIHOODS
    category_balance: float = 0.0  # weight of KL(q(c) || uniform) in the loss; 0: the reference's objective
    latent_independence: float = 0.0  # weight of the estimate of I(z; c) in the loss; 0: the reference's objective
    batch_size: int | None = None
    learning_rate: float | None = None
    steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    seed: int = 0
    strategy: str = "auto"
    precision: str = "float32"  # the Keras dtype policy the model is built under: model.PRECISIONS
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 100
    image_every: int = 2000
    verbose: str | int = "auto"


def _positive(name: str, value, allow_none: bool = True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")


def validate(config: TrainConfig) -> None:
    """One-line ValueErrors for settings that cannot work."""
    for name in ("batch_size", "learning_rate", "steps", "epochs", "steps_per_epoch"):
        _positive(name, getattr(config, name))
    if config.temperature is not None:
        parse_temperature(config.temperature)
    check_options(config.straight_through, config.discrete_kl)
    losses.check_likelihood(config.likelihood)
    losses.check_term_weight("category_balance", config.category_balance)
    losses.check_term_weight("latent_independence", config.latent_independence)
    check_precision(config.precision)
    for name in ("checkpoint_every", "keep_checkpoints", "log_every", "image_every"):
        _positive(name, getattr(config, name), allow_none=False)
    if config.steps is not None and config.epochs is not None:
        raise ValueError(f"give steps or epochs, not both (got steps={config.steps}, epochs={config.epochs})")
    if config.strategy not in distribute.STRATEGIES:
        raise ValueError(f"unknown strategy {config.strategy!r}; allowed: {', '.join(distribute.STRATEGIES)}")
    if not config.model_dir:
        raise ValueError("model_dir must be a folder path, got an empty value")
    if config.channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {config.channels!r}")
    if config.image_size is not None and config.image_size not in networks.SUPPORTED_SIZES:
        raise ValueError(f"image_size {config.image_size!r} is not supported: use one of "
                         f"{', '.join(str(size) for size in networks.SUPPORTED_SIZES)}")


def make_dataset(config: TrainConfig, global_batch: int, start: int | None = None) -> tf.data.Dataset:
    """The training images [global_batch, H, W, C], batched with drop_remainder.

    `start` None: one epoch. A step: the endless stream from that step's batch on, the same
    whether the run got there in one go or resumed (see `data.load_dataset`).
    """
    from jointvae_tf import data

    dataset = data.load_dataset(
        config.dataset, split="train", data_dir=config.data_dir, manual_dir=config.manual_dir,
        batch_size=global_batch, shuffle=True, seed=config.seed, channels=config.channels,
        image_size=config.image_size, start=start,
    )
    options = tf.data.Options()
    # Every worker builds the same pipeline; each takes its share of the elements.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def resolve(config: TrainConfig, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The full configuration: preset values for unset fields, parsed and validated."""
    preset = presets.preset_for(config.preset or config.dataset, image_shape)
    if config.image_size is not None:  # the preset's recipe at another size (the networks grow with it)
        preset = presets.at_size(preset, config.image_size)
    if tuple(preset.image_shape) != tuple(image_shape):
        raise ValueError(
            f"dataset {config.dataset!r} gives images {list(image_shape)}, preset {config.preset or config.dataset!r} "
            f"expects {list(preset.image_shape)}"
        )
    spec = LatentSpec.parse(config.latent_spec) if config.latent_spec else preset.latent_spec
    model_config = JointVAE(
        image_shape=image_shape,
        latent_spec=spec,
        temperature=preset.temperature if config.temperature is None else parse_temperature(config.temperature),
        cont_capacity=Capacity.coerce(config.cont_capacity) if config.cont_capacity else preset.cont_capacity,
        disc_capacity=Capacity.coerce(config.disc_capacity) if config.disc_capacity else preset.disc_capacity,
        seed=config.seed,
        straight_through=config.straight_through,
        discrete_kl=config.discrete_kl,
        likelihood=config.likelihood,
        category_balance=config.category_balance,
        latent_independence=config.latent_independence,
    ).get_config()
    resolved = dataclasses.asdict(config)
    resolved.update(
        batch_size=config.batch_size or preset.batch_size,
        learning_rate=config.learning_rate or preset.learning_rate,
        model=model_config,
    )
    if preset.steps is not None:
        resolved["preset_steps"] = preset.steps
    return resolved


def _example_images(dataset: tf.data.Dataset, num: int = 8) -> np.ndarray:
    for batch in dataset.take(1):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return np.asarray(images)[:num]
    raise ValueError("the dataset yielded no batch: it holds fewer images than one batch")


def _worker_dir(model_dir: str) -> str:
    """Chief: model_dir. Other workers: a scratch folder (their checkpoints are needed for the collective save)."""
    if distribute.is_chief():
        return model_dir
    _, index, _ = distribute.task_info()
    return os.path.join(model_dir, "workers", f"worker_{index}")


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains (or resumes) into config.model_dir; returns a summary (final step, logs, paths).

    The model_dir is locked for the run (`checkpoints.ModelDirLock`). SIGTERM and SIGINT
    (Ctrl-C) end the run at the next step with a checkpoint saved; the summary then has
    "interrupted": the signal's name (the binary exits non-zero).
    """
    from jointvae_tf.data import pipeline

    validate(config)
    model_dir = checkpoints.prepare_model_dir(_worker_dir(config.model_dir))
    try:
        # The data are read once: the first epoch (size, example pictures) and the stream share them.
        with checkpoints.ModelDirLock(model_dir), jv_callbacks.StopOnSignal() as stop_on_signal, \
                pipeline.loading_once():
            return _train_locked(config, model_dir, stop_on_signal)
    finally:
        # `fit` leaves its input iterator in a reference cycle. Left to interpreter teardown, an
        # iterator whose tf.data thread is inside `tf.numpy_function` (our pipelines gather with it)
        # is never destroyed: the thread cannot take the GIL then, and the process hangs at exit
        # (seen after long bench/reproduce.py runs, which train once per epoch). Free it now.
        gc.collect()


def _total_steps(config: TrainConfig, resolved: dict[str, Any], cardinality: int) -> tuple[int, int]:
    """(total_steps, steps_per_epoch) from the flags, the data's size and the capacity schedules."""
    steps_per_epoch = config.steps_per_epoch or (cardinality if cardinality > 0 else 1000)
    if config.steps is not None:
        total_steps = config.steps
    elif config.epochs is not None:
        total_steps = config.epochs * steps_per_epoch
    elif resolved.get("preset_steps"):
        total_steps = resolved["preset_steps"]
    else:
        total_steps = max(resolved["model"]["cont_capacity"][2], resolved["model"]["disc_capacity"][2])
    if config.steps_per_epoch is None:
        steps_per_epoch = min(steps_per_epoch, total_steps)  # a progress bar that ends where training does
    return total_steps, steps_per_epoch


def _train_locked(config: TrainConfig, model_dir: str, stop_on_signal) -> dict[str, Any]:
    # Initial weights (and anything else drawn from Python, NumPy or TF global RNGs) follow --seed.
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    log.info("%d replica(s); TensorFlow oneDNN CPU kernels %s", replicas, "on" if runtime.onednn_enabled() else "off")
    global_batch = config.batch_size or presets.batch_size_for(config.preset or config.dataset)
    if global_batch % replicas:
        raise ValueError(f"batch_size {global_batch} (global) must be divisible by the {replicas} replicas")
    dataset = make_dataset(config, global_batch)
    image_shape = tuple(int(d) for d in dataset.element_spec.shape[1:])
    resolved = resolve(config, image_shape)
    total_steps, steps_per_epoch = _total_steps(config, resolved, int(dataset.cardinality()))
    resolved.update(total_steps=total_steps, steps_per_epoch=steps_per_epoch)

    # The newest readable checkpoint (an unreadable newer one is skipped with a warning). Every
    # worker restores the chief's, so all start from the same step even if a worker's own
    # scratch checkpoints (written for the collective save) are older or newer.
    latest = checkpoints.restorable_checkpoint(os.path.abspath(config.model_dir))
    start_hint = checkpoints.checkpoint_step(latest) if latest else 0
    if os.path.exists(os.path.join(model_dir, checkpoints.CONFIG_FILE)):
        saved = checkpoints.read_config(model_dir)
        checkpoints.check_compatible(saved, resolved, model_dir)
        checkpoints.record_changes(saved, resolved, start_hint, log)
    # Strict JSON: settings are never NaN (validate refuses them), and readers other than Python's must parse it.
    checkpoints.write_json_atomic(os.path.join(model_dir, checkpoints.CONFIG_FILE), resolved, allow_nan=False)

    # Keras runs whole executions, so epochs and the step budget must be multiples of
    # steps_per_execution; a resumed run starts at its checkpoint's step.
    steps_per_execution = None if replicas > 1 else math.gcd(
        DEFAULT_STEPS_PER_EXECUTION, steps_per_epoch, total_steps, start_hint
    )
    # The model is built under the run's dtype policy; the previous global policy is back afterwards.
    with strategy.scope(), precision_policy(config.precision):
        model = JointVAE.from_config(resolved["model"])
        model.compile(optimizer=default_optimizer(resolved["learning_rate"]), steps_per_execution=steps_per_execution)
        checkpointer = checkpoints.Checkpointer(model, model_dir, max_to_keep=config.keep_checkpoints)
        restored = checkpointer.restore(latest)
    start_step = checkpoints.optimizer_step(model.optimizer)
    if restored:
        log.info("resumed from %s at step %d", restored, start_step)
        # The learning rate is an optimizer variable: the checkpoint brought back the old one.
        restored_rate = checkpoints.learning_rate(model.optimizer)
        if not math.isclose(restored_rate, resolved["learning_rate"], rel_tol=1e-6):
            log.info("learning rate %g (checkpoint had %g)", resolved["learning_rate"], restored_rate)
            model.optimizer.learning_rate.assign(resolved["learning_rate"])

    examples = _example_images(dataset)
    log_dir = os.path.join(model_dir, "logs")
    callback_list = [
        jv_callbacks.NaNGuard(checkpointer),  # first: nothing may checkpoint a non-finite step
        jv_callbacks.StopAtStep(total_steps),
        stop_on_signal,
        jv_callbacks.StepCheckpoint(checkpointer, config.checkpoint_every),
        # Keras' TensorBoard for epoch scalars only: its batch scalars count hook calls
        # (one per steps_per_execution steps) and restart at 0 on resume; StepScalars
        # writes them against the global step.
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"),
        jv_callbacks.StepScalars(examples, log_dir, config.log_every),
        jv_callbacks.Pictures(examples, os.path.join(model_dir, "images"), log_dir, config.image_every),
    ]
    history = None
    if start_step < total_steps and not stop_on_signal.received:
        initial_epoch = start_step // steps_per_epoch
        epochs = math.ceil(total_steps / steps_per_epoch)
        # The data continue where the checkpoint's step left them, not from the first batch again.
        history = model.fit(
            make_dataset(config, global_batch, start=start_step), epochs=epochs, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callback_list, verbose=config.verbose,
            shuffle=False,  # make_dataset already shuffles; Keras would only warn
        )
    elif start_step >= total_steps:
        log.info("model_dir %s is already trained to step %d (of %d)", model_dir, start_step, total_steps)

    keras_path = os.path.join(model_dir, "model.keras")
    if stop_on_signal.received:
        # Checkpointed at the step it stopped; the .keras file waits for the end of training.
        checkpointer.save()
    else:
        _save_keras_atomic(model, keras_path)
    return {
        "model_dir": model_dir,
        "step": checkpoints.optimizer_step(model.optimizer),
        "total_steps": total_steps,
        "checkpoint": checkpointer.latest,
        "keras_model": None if stop_on_signal.received else keras_path,
        "interrupted": stop_on_signal.received,
        "logs": {k: float(v[-1]) for k, v in history.history.items()} if history and history.history else {},
        "model": model,
    }


def _save_keras_atomic(model: keras.Model, path: str) -> None:
    with fileio.atomic_path(path) as tmp:
        model.save(tmp)
