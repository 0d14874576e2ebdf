"""jointvae-tf: JointVAE (Dupont, NeurIPS 2018) in TensorFlow and Keras 3.

Public API:
    LatentSpec, Capacity, Anneal  the latent space, the capacity schedules, an annealed temperature
    JointVAE                      the keras.Model (custom train_step / test_step)
    precision_policy              builds a JointVAE under mixed_bfloat16 / mixed_float16 (a Keras dtype policy)
    GaussianSampler, GumbelSoftmaxSampler   tfd-backed sampling layers
    losses                        the objective as pure functions
    data, metrics, viz, compat    loaded on first use
    pretrained                    models trained by the project, shipped in the package (loaded on first use)

Importing this package before TensorFlow turns on TensorFlow's oneDNN CPU kernels
(faster training here; see `jointvae_tf.runtime`).
"""

import importlib

from jointvae_tf import runtime

runtime.request_onednn()

# The imports below load TensorFlow, so they come after the oneDNN request.

from jointvae_tf import losses
from jointvae_tf.latents import Anneal, Capacity, LatentSpec
from jointvae_tf.layers import GaussianSampler, GumbelSoftmaxSampler
from jointvae_tf.model import JointVAE, precision_policy

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("data", "metrics", "viz", "compat", "presets", "training", "pretrained")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"jointvae_tf.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'jointvae_tf' has no attribute {name!r}")


__all__ = [
    "Anneal",
    "Capacity",
    "GaussianSampler",
    "GumbelSoftmaxSampler",
    "JointVAE",
    "LatentSpec",
    "losses",
    "precision_policy",
    "runtime",
    *_LAZY_SUBMODULES,
]
