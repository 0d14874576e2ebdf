"""Tests for jointvae_tf/metrics/utils.py."""

import numpy as np
import pytest
import tensorflow as tf

import jointvae_tf.metrics as jm
from jointvae_tf.metrics import utils
from metrics_test_data import IdentityData




def test_check_int_option_accepts_and_rejects():
    assert utils.check_int_option("batch_size", np.int64(5), 2) == 5
    for bad in (1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"batch_size must be an integer >= 2"):
            utils.check_int_option("batch_size", bad, 2)


def test_check_random_state_rejects_seed():
    with pytest.raises(TypeError, match="np.random.RandomState"):
        utils.check_random_state(0)


def test_sample_factors_rejects_wrong_shape():
    data = IdentityData([2, 3])
    data.sample_factors = lambda num, random_state: np.zeros((num, 3))
    with pytest.raises(ValueError, match=r"shape \(4, 3\), expected \(4, 2\)"):
        utils.sample_factors(data, 4, np.random.RandomState(0))


def test_sample_representations_batches_and_sampling_order():
    data = IdentityData([4, 5, 6])
    calls = []

    def representation_fn(observations):
        calls.append(len(observations))
        return observations * 2.0

    codes, factors = utils.sample_representations(
        data, representation_fn, 10, np.random.RandomState(3), batch_size=4
    )
    assert calls == [4, 4, 2]
    assert codes.shape == (10, 3) and codes.dtype == np.float64
    np.testing.assert_array_equal(codes, 2.0 * factors)
    random_state = np.random.RandomState(3)
    expected = np.concatenate([data.sample_factors(n, random_state) for n in (4, 4, 2)])
    np.testing.assert_array_equal(factors, expected)


def test_represent_factors_chunks_large_inputs():
    data = IdentityData([3, 3])
    factors = data.sample_factors(7, np.random.RandomState(0))
    calls = []

    def representation_fn(observations):
        calls.append(len(observations))
        return observations

    codes = utils.represent_factors(
        data, representation_fn, factors, np.random.RandomState(0), batch_size=3
    )
    assert calls == [3, 3, 1]
    np.testing.assert_array_equal(codes, factors)


@pytest.mark.parametrize(
    "representation_fn, message",
    [
        (lambda x: x[:, 0], r"\[4, num_latents\] for 4 observations, got shape \(4,\)"),
        (lambda x: x[:-1], r"\[4, num_latents\] for 4 observations, got shape \(3, 2\)"),
        (lambda x: x[:, :0], r"got shape \(4, 0\)"),
        (lambda x: np.full(x.shape, np.nan), "non-finite"),
    ],
)
def test_represent_factors_rejects_bad_representations(representation_fn, message):
    data = IdentityData([3, 3])
    factors = data.sample_factors(4, np.random.RandomState(0))
    with pytest.raises(ValueError, match=message):
        utils.represent_factors(
            data, representation_fn, factors, np.random.RandomState(0), batch_size=4
        )


def test_represent_factors_rejects_varying_latent_count():
    data = IdentityData([3, 3])
    factors = data.sample_factors(4, np.random.RandomState(0))
    widths = iter([2, 3])

    def representation_fn(x):
        return np.zeros((len(x), next(widths)))

    with pytest.raises(ValueError, match="varying number of latents: 2 then 3"):
        utils.represent_factors(
            data, representation_fn, factors, np.random.RandomState(0), batch_size=2
        )


def test_histogram_discretize_bins():
    values = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0], [0.26, 5.0]])
    discretized = utils.histogram_discretize(values, num_bins=4)
    np.testing.assert_array_equal(discretized[:, 0], [1, 3, 4, 2])
    # A constant column falls in a single bin.
    assert len(np.unique(discretized[:, 1])) == 1
    assert discretized.dtype == np.int64


def test_contingency_table_counts_pairs():
    table = utils.contingency_table([7, 7, 2, 2, 2], [0, 1, 1, 1, 9])
    np.testing.assert_array_equal(table, [[0, 2, 1], [1, 1, 0]])


def test_mutual_info_known_values():
    a = np.array([0, 0, 1, 1])
    assert utils.mutual_info(a, a) == pytest.approx(np.log(2))
    assert utils.mutual_info(a, 5 - a) == pytest.approx(np.log(2))
    assert utils.mutual_info(a, np.array([0, 1, 0, 1])) == 0.0
    # p(a, b) = [[1/2, 0], [1/4, 1/4]]: H(a) + H(b) - H(a, b).
    b = np.array([0, 0, 0, 1])

    def h(*p):
        return -sum(x * np.log(x) for x in p)

    expected = h(0.5, 0.5) + h(0.75, 0.25) - h(0.5, 0.25, 0.25)
    assert utils.mutual_info(a, b) == pytest.approx(expected)


def test_discrete_mutual_info_and_entropy_shapes():
    factors = np.array([[0, 0], [0, 1], [1, 2], [1, 3]])
    codes = np.array([[0, 1, 5], [0, 1, 5], [1, 0, 5], [1, 0, 5]])
    mutual_info = utils.discrete_mutual_info(codes, factors)
    assert mutual_info.shape == (3, 2)
    np.testing.assert_allclose(
        mutual_info, [[np.log(2), np.log(2)], [np.log(2), np.log(2)], [0, 0]], atol=1e-12
    )
    np.testing.assert_allclose(utils.discrete_entropy(factors), [np.log(2), np.log(4)])


def _fake_encode(observations):
    """Stands in for `model.encode`: tf tensors, 2 continuous + (3, 2) discrete."""
    observations = tf.convert_to_tensor(observations)
    return {
        "mean": observations[:, :2] * 10.0,
        "logits": [observations[:, 2:5], observations[:, 5:7]],
    }


def test_make_representation_fn_concatenates_mean_and_one_hot():
    observations = np.array(
        [
            [0.1, 0.2, 3.0, 1.0, 2.0, 0.0, 1.0],
            [0.3, 0.4, 0.0, 5.0, 2.0, 1.0, 0.0],
            [0.5, 0.6, 0.0, 1.0, 9.0, 1.0, 0.0],
        ],
        dtype=np.float32,
    )
    calls = []

    def encode(x):
        calls.append(len(x))
        return _fake_encode(x)

    representation = jm.make_representation_fn(encode, batch_size=2)(observations)
    assert calls == [2, 1]
    assert isinstance(representation, np.ndarray)
    np.testing.assert_allclose(
        representation,
        [
            [1, 2, 1, 0, 0, 0, 1],
            [3, 4, 0, 1, 0, 1, 0],
            [5, 6, 0, 0, 1, 1, 0],
        ],
        rtol=1e-6,
    )


def test_make_representation_fn_continuous_or_discrete_only():
    observations = np.array([[0.5, 2.0, 1.0]], dtype=np.float32)
    only_mean = jm.make_representation_fn(lambda x: {"mean": x[:, :1]})
    np.testing.assert_allclose(only_mean(observations), [[0.5]])
    only_logits = jm.make_representation_fn(lambda x: {"mean": None, "logits": [x[:, 1:]]})
    np.testing.assert_array_equal(only_logits(observations), [[1.0, 0.0]])
    neither = jm.make_representation_fn(lambda x: {"logits": []})
    with pytest.raises(ValueError, match='neither "mean" nor "logits"'):
        neither(observations)


def test_make_representation_fn_index_encoding():
    observations = np.array(
        [[0.1, 0.2, 3.0, 1.0, 2.0, 0.0, 1.0], [0.5, 0.6, 0.0, 1.0, 9.0, 1.0, 0.0]], dtype=np.float32
    )
    representation_fn = jm.make_representation_fn(_fake_encode, discrete="index")
    np.testing.assert_allclose(
        representation_fn(observations), [[1, 2, 0, 1], [5, 6, 2, 0]], rtol=1e-6
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"discrete": "onehot"}, r"discrete must be one of \('one_hot', 'index'\)"),
    ],
)
def test_make_representation_fn_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        jm.make_representation_fn(_fake_encode, **options)


@pytest.mark.parametrize(
    "discrete, expected_mig",
    [
        # One-hot splits factor 0 over 3 equally informative columns: gap ~0.
        ("one_hot", 0.5),
        ("index", 1.0),
    ],
)
def test_make_representation_fn_feeds_a_metric(discrete, expected_mig):
    """A model encoding factor 0 as a category and factor 1 as a mean."""
    data = IdentityData([3, 8])

    def encode(observations):
        return {
            "mean": observations[:, 1:] / 8.0,
            "logits": [np.eye(3)[observations[:, 0].astype(int)]],
        }

    representation_fn = jm.make_representation_fn(encode, discrete=discrete)
    scores = jm.mig(data, representation_fn, np.random.RandomState(0), num_train=2000)
    assert scores["mig"] == pytest.approx(expected_mig, abs=0.02)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
