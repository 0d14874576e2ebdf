"""The batched metrics and `CachedRepresentation` give exactly the scores of per-sample loops.

The references below are the metrics written the plain way (one vote / point / batch at a
time, observed and encoded as soon as it is drawn, as disentanglement_lib does); the library
draws every factor first, encodes in bulk and, with a `CachedRepresentation`, encodes each
factor combination once. Scores must be equal, not close.
"""

import numpy as np
import pytest

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import beta_vae, factor_vae, utils
from metrics_test_data import IdentityData


class DeterministicData(IdentityData):
    """IdentityData that declares its observations deterministic (the fast path)."""

    deterministic_observations = True


class NoisyData(IdentityData):
    """Observations draw noise from the random state: the sampling order must be kept."""

    def sample_observations_from_factors(self, factors, random_state):
        return np.asarray(factors, np.float32) + random_state.normal(size=np.shape(factors)).astype(np.float32)


def _projection(num_columns=6, seed=7):
    """A nonlinear float32 code of observations [n, d], d <= 16."""
    weights = np.random.RandomState(seed).normal(size=(16, num_columns))

    def representation_fn(x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return np.tanh(x @ weights[: x.shape[1]] / 5.0).astype(np.float32)

    return representation_fn


# ------------------------------------------------------------------------------ references
def _encode(data, representation_fn, factors, random_state, batch_size):
    codes = []
    for start in range(0, len(factors), batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        codes.append(np.asarray(representation_fn(observations), np.float64))
    return np.concatenate(codes)


def reference_factor_vae(data, representation_fn, random_state, batch_size, num_train, num_eval,
                         num_variance_estimate, prune_threshold=0.05):
    num_factors = len(data.factor_sizes)
    codes = _encode(data, representation_fn, np.array(data.sample_factors(num_variance_estimate, random_state)),
                    random_state, batch_size)
    global_variances = np.var(codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_variances) >= prune_threshold)
    if active.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}

    def votes(num_votes):
        table = np.zeros((len(global_variances), num_factors), np.int64)
        for _ in range(num_votes):
            k = random_state.randint(num_factors)
            factors = np.array(data.sample_factors(batch_size, random_state))
            factors[:, k] = factors[0, k]
            local = np.var(_encode(data, representation_fn, factors, random_state, batch_size), axis=0, ddof=1)
            table[active[np.argmin(local[active] / global_variances[active])], k] += 1
        return table

    train = votes(num_train)
    classifier = np.argmax(train, axis=1)
    evaluation = votes(num_eval)
    return {"train_accuracy": factor_vae._accuracy(train, classifier),
            "eval_accuracy": factor_vae._accuracy(evaluation, classifier),
            "num_active_dims": float(active.size)}


def reference_beta_vae(data, representation_fn, random_state, batch_size, num_train, num_eval):
    num_factors = len(data.factor_sizes)

    def points(num):
        features, labels = [], []
        for _ in range(num):
            k = random_state.randint(num_factors)
            factors1 = np.array(data.sample_factors(batch_size, random_state))
            factors2 = np.array(data.sample_factors(batch_size, random_state))
            factors2[:, k] = factors1[:, k]
            code1 = _encode(data, representation_fn, factors1, random_state, batch_size)
            code2 = _encode(data, representation_fn, factors2, random_state, batch_size)
            features.append(np.mean(np.abs(code1 - code2), axis=0))
            labels.append(k)
        return np.stack(features), np.array(labels)

    train_features, train_labels = points(num_train)
    weights, bias = beta_vae._fit_logistic_regression(train_features, train_labels, num_factors)
    eval_features, eval_labels = points(num_eval)

    def accuracy(features, labels):
        return float(np.mean(np.argmax(features @ weights + bias, axis=1) == labels))

    return {"train_accuracy": accuracy(train_features, train_labels),
            "eval_accuracy": accuracy(eval_features, eval_labels)}


def reference_mig_codes(data, representation_fn, random_state, num_train, batch_size):
    codes, factors = [], []
    for start in range(0, num_train, batch_size):
        batch = np.array(data.sample_factors(min(batch_size, num_train - start), random_state))
        codes.append(_encode(data, representation_fn, batch, random_state, batch_size))
        factors.append(batch)
    return np.concatenate(codes), np.concatenate(factors)


FACTOR_VAE = {"batch_size": 8, "num_train": 60, "num_eval": 40, "num_variance_estimate": 100}
BETA_VAE = {"batch_size": 8, "num_train": 60, "num_eval": 30}


# ------------------------------------------------------------------------------ equality
@pytest.mark.parametrize(
    "data_class, cached",
    [(DeterministicData, False), (DeterministicData, True), (NoisyData, False)],  # a cache needs determinism
)
def test_scores_equal_the_per_sample_reference(data_class, cached):
    data = data_class([3, 4, 5, 2])
    plain = _projection()

    def fn(batch_size):
        return jm.CachedRepresentation(data, plain, batch_size=batch_size) if cached else plain

    for seed in (0, 1):
        assert jm.factor_vae_score(data, fn(8), np.random.RandomState(seed), **FACTOR_VAE) == \
            reference_factor_vae(data, plain, np.random.RandomState(seed), **FACTOR_VAE)
        assert jm.beta_vae_score(data, fn(8), np.random.RandomState(seed), **BETA_VAE) == \
            reference_beta_vae(data, plain, np.random.RandomState(seed), **BETA_VAE)
        codes, factors = utils.sample_representations(data, fn(16), 70, np.random.RandomState(seed), 16)
        expected_codes, expected_factors = reference_mig_codes(data, plain, np.random.RandomState(seed), 70, 16)
        np.testing.assert_array_equal(codes, expected_codes)
        np.testing.assert_array_equal(factors, expected_factors)


def test_random_state_is_left_where_the_reference_leaves_it():
    data, plain = DeterministicData([3, 4, 5, 2]), _projection()
    ours, reference = np.random.RandomState(5), np.random.RandomState(5)
    jm.beta_vae_score(data, jm.CachedRepresentation(data, plain, 8), ours, **BETA_VAE)
    reference_beta_vae(data, plain, reference, **BETA_VAE)
    assert ours.randint(1 << 30) == reference.randint(1 << 30)


def test_one_cache_serves_several_metrics_with_unchanged_scores():
    data, plain = DeterministicData([3, 4, 5, 2]), _projection()
    cache = jm.CachedRepresentation(data, plain, batch_size=8)
    first = jm.factor_vae_score(data, cache, np.random.RandomState(0), **FACTOR_VAE)
    encoded = cache.num_encoded
    assert 0 < encoded <= 3 * 4 * 5 * 2
    assert jm.beta_vae_score(data, cache, np.random.RandomState(0), **BETA_VAE) == \
        reference_beta_vae(data, plain, np.random.RandomState(0), **BETA_VAE)
    assert first == reference_factor_vae(data, plain, np.random.RandomState(0), **FACTOR_VAE)
    assert cache.num_encoded >= encoded


# ------------------------------------------------------------------------------ the cache
def test_cache_encodes_each_combination_once_in_full_batches():
    data = DeterministicData([3, 4, 5])
    calls, observed = [], []
    plain = _projection(num_columns=4)

    def representation_fn(x):
        calls.append(len(x))
        observed.extend(map(tuple, np.asarray(x, np.int64)))
        return plain(x)

    cache = jm.CachedRepresentation(data, representation_fn, batch_size=8)
    factors = np.array(data.sample_factors(500, np.random.RandomState(0)))
    codes = cache.codes(factors)
    distinct = {tuple(row) for row in factors}
    assert cache.num_encoded == len(distinct)
    assert set(calls) == {8}  # padded to the batch size
    assert distinct == set(observed)
    np.testing.assert_array_equal(codes, np.asarray(plain(factors), np.float64))
    calls.clear()
    np.testing.assert_array_equal(cache.codes(factors[::-1]), codes[::-1])
    assert calls == []  # nothing new to encode


def test_cache_encodes_in_its_own_batch_size_and_serves_the_metrics_chunks():
    data = DeterministicData([3, 4, 5])
    calls = []
    plain = _projection(num_columns=4)

    def representation_fn(x):
        calls.append(len(x))
        return plain(x)

    cache = jm.CachedRepresentation(data, representation_fn, batch_size=8, encode_batch_size=24)
    cache._OBSERVE_ROWS = 40  # several observed blocks (rounded up to 48 rows), so the prefetch thread works
    factors = np.array(data.sample_factors(200, np.random.RandomState(0)))
    codes = utils.represent_factors(data, cache, factors, np.random.RandomState(0), batch_size=8)
    assert set(calls) == {24}  # every call a full encode batch, the last padded
    assert cache.num_encoded == len({tuple(row) for row in factors})
    np.testing.assert_array_equal(codes, np.asarray(plain(factors), np.float64))


def test_partial_chunks_go_straight_to_the_representation():
    data = DeterministicData([3, 4, 5])
    calls = []

    def representation_fn(x):
        calls.append(len(x))
        return np.asarray(x, np.float64) * 2.0

    cache = jm.CachedRepresentation(data, representation_fn, batch_size=8)
    factors = np.array(data.sample_factors(20, np.random.RandomState(0)))
    codes = utils.represent_factors(data, cache, factors, np.random.RandomState(0), batch_size=8)
    np.testing.assert_array_equal(codes, factors * 2.0)
    assert calls[-1] == 4  # the 20 - 16 rows of the last chunk, encoded as before
    # Another batch size than the cache's bypasses it.
    calls.clear()
    utils.represent_factors(data, cache, factors, np.random.RandomState(0), batch_size=5)
    assert calls == [5, 5, 5, 5]


def test_cache_checks_its_inputs_and_the_representation():
    with pytest.raises(ValueError, match="deterministic_observations"):
        jm.CachedRepresentation(IdentityData([2, 2]), lambda x: x)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        jm.CachedRepresentation(DeterministicData([2, 2]), lambda x: x, batch_size=0)
    with pytest.raises(ValueError, match="encode_batch_size must be an integer >= 1, got 0"):
        jm.CachedRepresentation(DeterministicData([2, 2]), lambda x: x, batch_size=2, encode_batch_size=0)
    data = DeterministicData([2, 3])
    cache = jm.CachedRepresentation(data, lambda x: np.full(np.shape(x), np.nan), batch_size=2)
    with pytest.raises(ValueError, match="non-finite"):
        cache.codes(np.array([[0, 1], [1, 2]]))


# ------------------------------------------------------------------------------ a real encoder
@pytest.fixture(scope="module")
def dsprites_encoder():
    from jointvae_tf import evaluation
    from jointvae_tf.data import DSprites
    from jointvae_tf.model import JointVAE

    model = JointVAE((64, 64, 1), "cont=3,disc=3", seed=4)
    return DSprites(), jm.make_representation_fn(evaluation.encode_fn(model), batch_size=16)


def test_jointvae_codes_do_not_depend_on_the_other_images_of_a_batch(dsprites_encoder):
    """What the cache relies on: at a fixed batch size, a row's code depends on its image alone."""
    data, representation_fn = dsprites_encoder
    images = data.sample_observations(32, np.random.RandomState(0))
    codes = np.concatenate([representation_fn(images[:16]), representation_fn(images[16:])])
    permutation = np.random.RandomState(1).permutation(32)
    shuffled = np.concatenate([representation_fn(images[permutation[:16]]),
                               representation_fn(images[permutation[16:]])])
    np.testing.assert_array_equal(shuffled, codes[permutation])


def test_jointvae_codes_do_not_depend_on_the_batch_size(dsprites_encoder):
    """What evaluation's large cache batches rely on: a row's code is the same at 16 or 1,024 rows a call."""
    from jointvae_tf import evaluation
    from jointvae_tf.model import JointVAE

    data, _ = dsprites_encoder
    images = data.sample_observations(evaluation.CACHE_ENCODE_BATCH_SIZE, np.random.RandomState(2))
    encode = evaluation.encode_fn(JointVAE((64, 64, 1), "cont=3,disc=[3]"))
    small = jm.make_representation_fn(encode, batch_size=16)(images)
    large = jm.make_representation_fn(encode, batch_size=evaluation.CACHE_ENCODE_BATCH_SIZE)(images)
    assert np.ptp(small[:, :3], axis=0).min() > 0  # codes that vary with the image
    np.testing.assert_array_equal(large, small)


def test_dsprites_scores_with_the_cache_equal_the_reference(dsprites_encoder):
    data, representation_fn = dsprites_encoder
    sizes = {"batch_size": 16, "num_train": 12, "num_eval": 8}
    cache = jm.CachedRepresentation(data, representation_fn, batch_size=16)
    assert jm.factor_vae_score(data, cache, np.random.RandomState(3), num_variance_estimate=40, **sizes) == \
        reference_factor_vae(data, representation_fn, np.random.RandomState(3), num_variance_estimate=40, **sizes)
    assert jm.beta_vae_score(data, cache, np.random.RandomState(3), **sizes) == \
        reference_beta_vae(data, representation_fn, np.random.RandomState(3), **sizes)
    assert jm.mig(data, cache, np.random.RandomState(3), num_train=50) == \
        jm.mig(data, representation_fn, np.random.RandomState(3), num_train=50)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
