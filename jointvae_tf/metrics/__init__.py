"""Disentanglement metrics, computed as disentanglement_lib computes them.

The three scores take `(ground_truth_data, representation_fn, random_state,
**options)` and return a dict of floats:

  * `factor_vae_score`: "train_accuracy", "eval_accuracy", "num_active_dims";
  * `mig`: "mig" (also under disentanglement_lib's name "discrete_mig");
  * `beta_vae_score`: "train_accuracy", "eval_accuracy";
  * `dci`: "disentanglement", "completeness", "informativeness_train", "informativeness_test";
  * `sap_score`: "sap_score".

`ground_truth_data` is any object with `factor_sizes`, `sample_factors(num, random_state)`
and `sample_observations_from_factors(factors, random_state)` (see `GroundTruthData`);
`representation_fn` maps observations [n, ...] to codes [n, num_latents];
`make_representation_fn(model.encode)` builds one from a JointVAE encoder
(continuous means followed by one-hot argmax of each discrete latent), and
`CachedRepresentation(ground_truth_data, representation_fn)` encodes each factor
combination of a deterministic ground truth (dSprites) once, for every metric it is given to.

`discrete_accuracy(categories, labels)` scores a discrete latent against
labels up to a renaming of its categories.
"""

from jointvae_tf.metrics.accuracy import discrete_accuracy
from jointvae_tf.metrics.beta_vae import beta_vae_score
from jointvae_tf.metrics.dci import dci
from jointvae_tf.metrics.factor_vae import factor_vae_score
from jointvae_tf.metrics.mig import mig
from jointvae_tf.metrics.sap import sap_score
from jointvae_tf.metrics.utils import CachedRepresentation, GroundTruthData, make_representation_fn

__all__ = [
    "CachedRepresentation",
    "GroundTruthData",
    "beta_vae_score",
    "dci",
    "discrete_accuracy",
    "factor_vae_score",
    "make_representation_fn",
    "mig",
    "sap_score",
]
