"""Tests for jointvae_tf/metrics/mig.py."""

import numpy as np
import pytest

import jointvae_tf.metrics as jm
from metrics_test_data import IdentityData




def _mig(representation_fn, factor_sizes=(10,) * 10, seed=0, **options):
    options = {"num_train": 3000, **options}
    return jm.mig(
        IdentityData(factor_sizes), representation_fn, np.random.RandomState(seed), **options
    )["mig"]


def test_identity_scores_high_with_defaults():
    scores = jm.mig(IdentityData([10] * 10), lambda x: x, np.random.RandomState(0))
    assert set(scores) == {"mig", "discrete_mig"}
    assert isinstance(scores["mig"], float)
    assert scores["mig"] == scores["discrete_mig"]
    assert 0.9 <= scores["mig"] <= 1.0


def test_latent_order_sign_and_scale_do_not_matter():
    scale = np.linspace(-3.0, 100.0, 10)
    assert _mig(lambda x: x[:, ::-1] * scale + 1.0) >= 0.9


def test_zeros_score_zero():
    assert _mig(np.zeros_like) == 0.0


def test_noise_scores_low():
    noise = np.random.RandomState(1)
    assert _mig(lambda x: noise.normal(size=x.shape)) <= 0.2


def test_duplicated_latent_scores_low():
    assert _mig(lambda x: np.hstack([x, x])) <= 0.1


def test_known_value_half():
    # z0 = f0 carries all of f0; z1 = f0 xor f1 is independent of each factor
    # alone, so f0 scores a gap of 1 and f1 a gap of 0: MIG = 0.5.
    def representation_fn(x):
        return np.stack([x[:, 0], (x[:, 0] + x[:, 1]) % 2], 1)

    assert _mig(representation_fn, [2, 2]) == pytest.approx(0.5, abs=0.01)


def test_twenty_bins_cap_information_on_large_factors():
    # 40 values in 20 bins keep log(20) of log(40) nats.
    assert _mig(lambda x: x, [40, 2]) == pytest.approx((np.log(20) / np.log(40) + 1) / 2, abs=0.01)
    assert _mig(lambda x: x, [40, 2], num_bins=40) == pytest.approx(1.0, abs=0.01)


def test_constant_factors_are_left_out():
    # Factor 0 is constant (gap undefined), factor 1 is duplicated (gap 0),
    # factor 2 is alone (gap 1): the mean over factors 1 and 2 is 0.5.
    def representation_fn(x):
        return np.hstack([x, x[:, 1:2]])

    assert _mig(representation_fn, [1, 6, 4]) == pytest.approx(0.5, abs=0.01)


def test_same_model_and_seed_give_same_numbers():
    weights = np.random.RandomState(7).normal(size=(10, 6))

    def model(x):
        return np.tanh(x @ weights / 10.0)

    assert _mig(model, seed=3) == _mig(model, seed=3)
    assert _mig(model, seed=4) != _mig(model, seed=3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_bins": 1}, "num_bins must be an integer >= 2, got 1"),
        ({"num_train": 1}, "num_train must be an integer >= 2, got 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        _mig(lambda x: x, **options)


def test_rejects_single_latent():
    with pytest.raises(ValueError, match="at least 2 latents"):
        _mig(lambda x: x[:, :1])


def test_rejects_wrong_row_count():
    with pytest.raises(ValueError, match=r"\[16, num_latents\]"):
        _mig(lambda x: np.vstack([x, x]))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
