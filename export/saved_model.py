"""The SavedModel of a JointVAE: four signatures over the model's variables, loadable without Keras.

    loaded = tf.saved_model.load("export/saved_model")
    loaded.signatures["encode"](images=x)          # {"mean", "log_var": [B, cont], "probabilities_i": [B, K_i]}
    loaded.signatures["decode"](latent=z)          # {"images": [B, H, W, C] in [0, 1]}
    loaded.signatures["reconstruct"](images=x)     # {"images": [B, H, W, C]}: decode(posterior mode)
    loaded.signatures["sample"](count=tf.constant(16), seed=tf.constant(0))   # {"images", "latent": [count, L]}

Every batch dimension is dynamic. The serving modules track only the encoder's and the
decoder's variables (no optimizer, no metrics), and the functions are traced into plain
TensorFlow graphs, so loading needs neither jointvae_tf, Keras nor tensorflow-probability.
`sample` draws the same stateless random numbers as `JointVAE.sample_prior(count, seed)`,
so it returns `model.sample(count, seed)`'s images.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from export import fileio

if TYPE_CHECKING:  # jointvae_tf (Keras, tensorflow-probability) loads with the model, not with this module
    from jointvae_tf.model.latents import LatentSpec
    from jointvae_tf.model import JointVAE

SIGNATURES = ("encode", "decode", "reconstruct", "sample")


def latent_signature(latent_dim: int, batch_size: int | None = None) -> tf.TensorSpec:
    """The decoder's input: float32 latent [batch_size, latent_dim] named "latent" (None: any batch)."""
    return tf.TensorSpec([batch_size, latent_dim], tf.float32, name="latent")


def tf_variables(network) -> list[tf.Variable]:
    """The tf.Variables under a Keras network's variables, for a tf.Module to track.

    Tracking these, not the Keras variable wrappers, matters: a SavedModel of the wrappers
    saves restore functions that assign to the variables, so the TFLite converter (TF 2.21)
    keeps them as VAR_HANDLE / READ_VARIABLE ops instead of freezing them into constants,
    and the converted model has no weights.
    """
    variables = [v.value for v in network.variables]
    for variable, value in zip(network.variables, variables):
        if not isinstance(value, tf.Variable):
            raise TypeError(f"{network.name}: variable {variable.path} is not backed by a tf.Variable")
    return variables


def prior_latent(spec: LatentSpec, count: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Latents [count, L] from the prior, drawing exactly what `JointVAE.sample_prior(count, seed)` draws.

    `sample_prior` takes Python ints; this is the same computation on int32 scalar tensors,
    so it can run inside a traced function (tests pin the two together).
    """
    base = tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])
    seeds = tf.unstack(tf.random.experimental.stateless_split(base, 1 + spec.num_discrete))
    parts = []
    if spec.continuous:
        parts.append(tf.random.stateless_normal(tf.stack([count, spec.continuous]), seed=seeds[0]))
    for k, s in zip(spec.discrete, seeds[1:]):
        categories = tf.random.stateless_uniform(tf.reshape(count, [1]), seed=s, maxval=k, dtype=tf.int32)
        parts.append(tf.one_hot(categories, k))
    return tf.concat(parts, axis=-1)


class DecoderModule(tf.Module):
    """`decode`: latent [batch, L] -> {"images": [batch, H, W, C] in [0, 1]}, over the decoder's variables only.

    What the TFLite converter takes: a graph with no random op and nothing of the encoder.
    `batch_size` fixes the batch (None: any batch; the SavedModel's signatures take any).
    """

    def __init__(self, model: JointVAE, batch_size: int | None = None, name: str = "jointvae_decoder"):
        super().__init__(name=name)
        self.decoder_variables = tf_variables(model.decoder)

        @tf.function(input_signature=[latent_signature(model.latent_spec.latent_dim, batch_size)])
        def decode(latent):
            return {"images": model.decode(latent)}

        self.decode = decode

    def signatures(self) -> dict[str, tf.types.experimental.GenericFunction]:
        return {"decode": self.decode}


class JointVAEModule(DecoderModule):
    """`decode` plus `encode`, `reconstruct` and `sample`, over the encoder's and the decoder's variables."""

    def __init__(self, model: JointVAE, name: str = "jointvae"):
        super().__init__(model, batch_size=None, name=name)
        self.encoder_variables = tf_variables(model.encoder)
        spec = model.latent_spec
        images_signature = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")

        @tf.function(input_signature=[images_signature])
        def encode(images):
            encoded = model.encode(images)
            outputs = {"mean": encoded["mean"], "log_var": encoded["log_var"]}
            for i, logits in enumerate(encoded["logits"]):
                outputs[f"probabilities_{i}"] = tf.nn.softmax(logits, axis=-1)
            return outputs

        @tf.function(input_signature=[images_signature])
        def reconstruct(images):
            return {"images": model.reconstruct(images)}

        @tf.function(
            input_signature=[tf.TensorSpec([], tf.int32, name="count"), tf.TensorSpec([], tf.int32, name="seed")]
        )
        def sample(count, seed):
            tf.debugging.assert_positive(count, message="sample: count must be >= 1")
            latent = prior_latent(spec, count, seed)
            return {"images": model.decode(latent), "latent": latent}

        self.encode = encode
        self.reconstruct = reconstruct
        self.sample = sample

    def signatures(self) -> dict[str, tf.types.experimental.GenericFunction]:
        return {name: getattr(self, name) for name in SIGNATURES}


def save_module(module: DecoderModule, path: str) -> str:
    """Saves `module` with its signatures to the new folder `path`, atomically (temporary folder + rename)."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists: a SavedModel is written into a new folder")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 would become the published folder's mode; this one follows the umask.
    tmp = fileio.make_unique_dir(parent, f".{os.path.basename(path)}.tmp-")
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def export_saved_model(model: JointVAE, path: str) -> str:
    """Writes the SavedModel with the signatures encode, decode, reconstruct and sample to `path`."""
    return save_module(JointVAEModule(model), path)


def decode_max_abs_error(path: str, latent: np.ndarray, reference: np.ndarray, batch_size: int = 100) -> float:
    """Reloads the SavedModel at `path` and returns max |decode(latent) - reference| over latent [N, L]."""
    decode = tf.saved_model.load(path).signatures["decode"]
    error = 0.0
    for start in range(0, len(latent), batch_size):
        images = decode(latent=tf.constant(latent[start:start + batch_size], tf.float32))["images"].numpy()
        error = max(error, float(np.max(np.abs(images - reference[start:start + batch_size]))))
    return error
