"""The disentanglement metric of the FactorVAE paper.

Based on "Disentangling by Factorising" (Kim & Mnih, 2018, https://arxiv.org/abs/1802.05983),
computed as disentanglement_lib's `compute_factor_vae` with its published configuration
(`prune_dims.threshold = 0.05`), drawing from `random_state` in the same order. Two
differences in bookkeeping only, neither changing the accuracies: votes are indexed by
latent rather than by position among the active latents, and "num_active_dims" counts the
active latents (disentanglement_lib reports the length of its boolean mask, i.e. all
latents).
"""

from __future__ import annotations

import numpy as np

from jointvae_tf.metrics import utils


def factor_vae_score(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """Computes the FactorVAE score.

    Each vote fixes one factor, chosen uniformly, across a batch of `batch_size` points;
    the latent with the smallest variance over the batch, normalised by its global
    variance, votes for that factor. A majority-vote classifier maps each latent to the
    factor it voted for most often in `num_train` votes, and is scored on those and on
    `num_eval` fresh votes.

    Args:
      ground_truth_data: The data set, e.g. the dSprites sampler.
      representation_fn: Maps observations [n, ...] to codes [n, num_latents].
      random_state: Source of all randomness.
      batch_size: Points per vote, also the largest `representation_fn` batch.
      num_train: Votes used to build the classifier.
      num_eval: Votes used to evaluate it.
      num_variance_estimate: Points used to estimate the global variances (ddof=1).
      prune_threshold: Latents whose global standard deviation is below this are
        inactive (collapsed to the prior) and never vote.

    Returns:
      "train_accuracy", "eval_accuracy" (both 0 when no latent is active) and
      "num_active_dims", the number of active latents.
    """
    utils.check_random_state(random_state)
    batch_size = utils.check_int_option("batch_size", batch_size, 2)
    num_train = utils.check_int_option("num_train", num_train, 1)
    num_eval = utils.check_int_option("num_eval", num_eval, 1)
    num_variance_estimate = utils.check_int_option(
        "num_variance_estimate", num_variance_estimate, 2
    )
    if not prune_threshold >= 0:
        raise ValueError(f"prune_threshold must be >= 0, got {prune_threshold!r}.")

    factors = utils.sample_factors(ground_truth_data, num_variance_estimate, random_state)
    codes = utils.represent_factors(
        ground_truth_data, representation_fn, factors, random_state, batch_size
    )
    global_variances = np.var(codes, axis=0, ddof=1)
    active_dims = np.flatnonzero(np.sqrt(global_variances) >= prune_threshold)
    if active_dims.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}

    def votes(num_votes):
        return _generate_votes(
            ground_truth_data,
            representation_fn,
            random_state,
            batch_size,
            num_votes,
            global_variances,
            active_dims,
        )

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=1)
    eval_votes = votes(num_eval)
    return {
        "train_accuracy": _accuracy(train_votes, classifier),
        "eval_accuracy": _accuracy(eval_votes, classifier),
        "num_active_dims": float(active_dims.size),
    }


def _generate_votes(
    ground_truth_data: utils.GroundTruthData,
    representation_fn: utils.RepresentationFn,
    random_state: np.random.RandomState,
    batch_size: int,
    num_votes: int,
    global_variances: np.ndarray,
    active_dims: np.ndarray,
) -> np.ndarray:
    """Draws `num_votes` votes.

    Args:
      global_variances: [num_latents], variances over the data.
      active_dims: Indices of the latents allowed to vote.

    Returns:
      int [num_latents, num_factors]: how often each latent had the smallest
      normalised variance while each factor was fixed.
    """
    num_factors = utils.num_factors(ground_truth_data)
    fixed = np.zeros(num_votes, dtype=np.int64)  # the factor each vote fixes

    def draws():
        for i in range(num_votes):
            fixed[i] = random_state.randint(num_factors)
            factors = utils.sample_factors(ground_truth_data, batch_size, random_state)
            factors[:, fixed[i]] = factors[0, fixed[i]]
            yield factors

    codes = utils.represent_factor_batches(
        ground_truth_data, representation_fn, draws(), random_state, batch_size
    ).reshape(num_votes, batch_size, -1)
    local_variances = np.var(codes, axis=1, ddof=1)  # [num_votes, num_latents]
    normalised = local_variances[:, active_dims] / global_variances[active_dims]
    winners = active_dims[np.argmin(normalised, axis=1)]
    votes = np.zeros((global_variances.shape[0], num_factors), dtype=np.int64)
    np.add.at(votes, (winners, fixed), 1)
    return votes


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Fraction of `votes` [num_latents, num_factors] that `classifier` [num_latents] gets."""
    correct = votes[np.arange(votes.shape[0]), classifier].sum()
    return float(correct / votes.sum())
