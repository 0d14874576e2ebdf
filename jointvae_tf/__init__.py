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

from jointvae_tf.model import (Anneal, Capacity, GaussianSampler, GumbelSoftmaxSampler, JointVAE, LatentSpec, losses,
                               precision_policy)

__version__ = "0.1.0"

# Loaded on first use: name -> module.
_LAZY_SUBMODULES = {
    "data": "jointvae_tf.data",
    "metrics": "jointvae_tf.metrics",
    "viz": "jointvae_tf.viz",
    "compat": "jointvae_tf.compat",
    "training": "jointvae_tf.training",
    "presets": "jointvae_tf.training.presets",
    "pretrained": "jointvae_tf.pretrained",
}


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(_LAZY_SUBMODULES[name])
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
