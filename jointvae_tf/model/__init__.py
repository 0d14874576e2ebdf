"""The model side of JointVAE: what a trained model is, apart from how it is trained.

One concept per module, following the data flow
images -> encoder -> (mean, log_var, logits) -> samplers -> latent -> decoder -> likelihood:

  * `latents`:  `LatentSpec` (the latent space), `Capacity` schedules, `Anneal` temperatures;
  * `losses`:   the objective as pure functions (KL terms, likelihoods, the capacity loss);
  * `layers`:   tfd-backed sampling layers (`GaussianSampler`, `GumbelSoftmaxSampler`);
  * `networks`: the reference encoder and decoder at every supported image size;
  * `jointvae`: `JointVAE`, the keras.Model that wires them (`train_step` / `test_step`).
"""

from jointvae_tf.model import latents, layers, losses, networks
from jointvae_tf.model.jointvae import JointVAE, precision_policy
from jointvae_tf.model.latents import Anneal, Capacity, LatentSpec
from jointvae_tf.model.layers import GaussianSampler, GumbelSoftmaxSampler

__all__ = [
    "Anneal",
    "Capacity",
    "GaussianSampler",
    "GumbelSoftmaxSampler",
    "JointVAE",
    "LatentSpec",
    "latents",
    "layers",
    "losses",
    "networks",
    "precision_policy",
]
