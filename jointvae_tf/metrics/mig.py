"""The Mutual Information Gap (MIG) of the beta-TC-VAE paper.

Based on "Isolating Sources of Disentanglement in Variational Autoencoders" (Chen et al.,
2018, https://arxiv.org/abs/1802.04942), computed as disentanglement_lib's `compute_mig`
with its published configuration (histogram discretizer, 20 bins), drawing from
`random_state` in the same order (its default sampling batch is 16 points).
"""

from __future__ import annotations

import numpy as np

from jointvae_tf.metrics import utils


def mig(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    num_train: int = 10000,
    num_bins: int = 20,
    batch_size: int = 16,
) -> dict[str, float]:
    """Computes the mutual information gap.

    Each latent is discretised into a `num_bins`-bin histogram over `num_train` sampled
    points. For each factor, the gap between the two largest mutual informations (nats)
    with a latent, divided by the factor's entropy, is averaged over factors. Factors
    that took a single value in the sample (zero entropy: the gap is undefined) are left
    out of the mean.

    Args:
      ground_truth_data: The data set, e.g. the dSprites sampler.
      representation_fn: Maps observations [n, ...] to codes [n, num_latents], with
        num_latents >= 2.
      random_state: Source of all randomness.
      num_train: Points sampled.
      num_bins: Histogram bins per latent. Factors with more values than bins cannot
        reach a gap of 1 (dSprites' 40 positions keep log 20 / log 40 = 0.81).
      batch_size: Points sampled and encoded per iteration.

    Returns:
      "mig", in [0, 1], and the same value under disentanglement_lib's name
      "discrete_mig".
    """
    utils.check_random_state(random_state)
    num_train = utils.check_int_option("num_train", num_train, 2)
    num_bins = utils.check_int_option("num_bins", num_bins, 2)
    batch_size = utils.check_int_option("batch_size", batch_size, 1)

    codes, factors = utils.sample_representations(
        ground_truth_data, representation_fn, num_train, random_state, batch_size
    )
    if codes.shape[1] < 2:
        raise ValueError(
            f"MIG needs at least 2 latents to take a gap, representation_fn returned "
            f"{codes.shape[1]}."
        )
    discretized = utils.histogram_discretize(codes, num_bins)
    mutual_info = utils.discrete_mutual_info(discretized, factors)  # [latents, factors]
    entropy = utils.discrete_entropy(factors)
    defined = entropy > 0
    if not defined.any():
        raise ValueError("every factor took a single value in the sample; MIG is undefined.")
    top_two = np.sort(mutual_info, axis=0)[::-1][:2]
    gaps = (top_two[0] - top_two[1])[defined] / entropy[defined]
    score = float(np.mean(gaps))
    return {"mig": score, "discrete_mig": score}
