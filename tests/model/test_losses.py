import math
import re

import numpy as np
import pytest
import tensorflow as tf

import jointvae_tf as jv
from jointvae_tf.model import losses


def _np_bce(x, logits):
    p = 1.0 / (1.0 + np.exp(-logits))
    per = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    return per.reshape(len(x), -1).sum(axis=1).mean()


def _np_kl_normal(mean, log_var):
    return (0.5 * (mean**2 + np.exp(log_var) - 1 - log_var)).mean(axis=0)


def _np_softmax(logits):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _np_kl_cat(logits):
    p = _np_softmax(logits)
    entropy = -(p * np.log(p)).sum(axis=1)
    return np.log(logits.shape[1]) - entropy.mean()


def test_reconstruction_loss_matches_numpy():
    rng = np.random.RandomState(0)
    x = rng.rand(5, 8, 8, 3).astype("float32")
    logits = rng.randn(5, 8, 8, 3).astype("float32") * 3
    assert losses.reconstruction_loss(x, tf.constant(logits)).numpy() == pytest.approx(_np_bce(x, logits), rel=1e-5)


def test_reconstruction_loss_is_stable_for_saturated_logits():
    x = np.zeros((2, 4, 4, 1), "float32")
    value = losses.reconstruction_loss(x, tf.fill([2, 4, 4, 1], -200.0)).numpy()
    assert np.isfinite(value) and value < 1e-6
    value = losses.reconstruction_loss(x, tf.fill([2, 4, 4, 1], 200.0)).numpy()
    assert value == pytest.approx(200.0 * 16, rel=1e-5)


def test_kl_normal_matches_numpy_and_is_zero_at_the_prior():
    rng = np.random.RandomState(1)
    mean, log_var = rng.randn(7, 4).astype("float32"), rng.randn(7, 4).astype("float32")
    np.testing.assert_allclose(losses.kl_normal(mean, log_var).numpy(), _np_kl_normal(mean, log_var), rtol=1e-5)
    assert losses.kl_normal(mean, log_var).shape == (4,)
    np.testing.assert_allclose(losses.kl_normal(np.zeros((3, 4), "float32"), np.zeros((3, 4), "float32")), 0.0)


def _np_kl_marginal(logits):
    m = _np_softmax(logits.astype("float64")).mean(axis=0)
    return float(np.sum(m * np.log(m * logits.shape[1])))


@pytest.mark.parametrize("kl, reference", [(losses.kl_categorical_uniform, _np_kl_cat),
                                           (losses.kl_marginal_uniform, _np_kl_marginal)])
def test_discrete_kls_match_numpy_for_one_latent_and_a_list(kl, reference):
    rng = np.random.RandomState(2)
    a, b = rng.randn(8, 10).astype("float32") * 3, rng.randn(8, 3).astype("float32")
    assert kl(tf.constant(a)).numpy() == pytest.approx(reference(a), rel=1e-4)
    np.testing.assert_allclose(kl([tf.constant(a), tf.constant(b)]).numpy(), [reference(a), reference(b)], rtol=1e-4)
    assert kl([]).shape == (0,)


def test_kl_categorical_is_zero_at_uniform_and_log_k_when_confident():
    assert abs(losses.kl_categorical_uniform(tf.zeros([4, 5])).numpy()) < 1e-6
    # A confident posterior approaches log K.
    confident = tf.constant([[50.0, 0.0, 0.0]])
    assert losses.kl_categorical_uniform(confident).numpy() == pytest.approx(math.log(3), abs=1e-5)


def test_kl_marginal_is_zero_for_balanced_categories_and_log_k_for_one():
    # Confident posteriors spread evenly over the categories: balanced, 0, although each KL_c is log K.
    even = tf.constant(np.eye(4, dtype="float32") * 60.0)
    assert abs(losses.kl_marginal_uniform(even).numpy()) < 1e-5
    assert losses.kl_categorical_uniform(even).numpy() == pytest.approx(math.log(4), abs=1e-5)
    # Every image sure of the same category: log K; two empty categories of three contribute 0, not NaN.
    same = tf.constant([[200.0, 0.0, 0.0]] * 5)
    assert losses.kl_marginal_uniform(same).numpy() == pytest.approx(math.log(3), abs=1e-5)


def test_kl_categorical_is_mutual_information_plus_the_marginal_kl():
    """Over a batch, E_x KL(q(c|x) || U) = I(x; c) + KL(q(c) || U), I = E_x KL(q(c|x) || q(c))."""
    rng = np.random.RandomState(6)
    logits = rng.randn(16, 5) * 2
    p = _np_softmax(logits)
    m = p.mean(axis=0)
    mutual_information = float(np.mean(np.sum(p * np.log(p / m), axis=1)))
    total = losses.kl_categorical_uniform(tf.constant(logits, tf.float32)).numpy()
    marginal = losses.kl_marginal_uniform(tf.constant(logits, tf.float32)).numpy()
    assert total == pytest.approx(mutual_information + marginal, rel=1e-4)


def _np_mi_continuous_discrete(mean, log_var, logits):
    """I(z; c) with q(z | c=k) and q(z) over the batch replaced per dimension by Gaussians of their moments."""
    mean, var, p = mean.astype("float64"), np.exp(log_var.astype("float64")), _np_softmax(logits.astype("float64"))
    total = 0.0
    for k in range(p.shape[1]):
        w = p[:, k] / p[:, k].sum()
        for d in range(mean.shape[1]):
            m, v = mean[:, d].mean(), (var[:, d] + mean[:, d] ** 2).mean() - mean[:, d].mean() ** 2
            m_k = np.sum(w * mean[:, d])
            v_k = np.sum(w * (var[:, d] + mean[:, d] ** 2)) - m_k**2
            total += p[:, k].mean() * 0.5 * (v_k / v + (m_k - m) ** 2 / v - 1 + np.log(v / v_k))
    return total


def test_mi_continuous_discrete_matches_numpy_for_one_latent_and_a_list():
    rng = np.random.RandomState(8)
    mean, log_var = rng.randn(12, 4).astype("float32"), rng.randn(12, 4).astype("float32") * 0.5
    a, b = rng.randn(12, 5).astype("float32") * 2, rng.randn(12, 2).astype("float32")
    mi = losses.mi_continuous_discrete(mean, log_var, tf.constant(a)).numpy()
    assert mi == pytest.approx(_np_mi_continuous_discrete(mean, log_var, a), rel=1e-4) and mi > 0
    per_latent = losses.mi_continuous_discrete(mean, log_var, [tf.constant(a), tf.constant(b)]).numpy()
    np.testing.assert_allclose(per_latent, [_np_mi_continuous_discrete(mean, log_var, a),
                                            _np_mi_continuous_discrete(mean, log_var, b)], rtol=1e-4)
    assert losses.mi_continuous_discrete(mean, log_var, []).shape == (0,)


def test_mi_continuous_discrete_is_zero_for_independent_codes_and_the_gaussian_channel_for_two_clusters():
    rng = np.random.RandomState(9)
    mean, log_var = rng.randn(10, 3).astype("float32"), rng.randn(10, 3).astype("float32")
    # Posteriors over c that do not depend on the image: every category sees the batch's moments of z.
    same = tf.constant(np.tile(rng.randn(1, 4), (10, 1)).astype("float32"))
    assert abs(losses.mi_continuous_discrete(mean, log_var, same).numpy()) < 1e-5
    # Two confident categories whose images sit at z_0 = -a and +a with variance s^2 (z_1 the same for
    # both): q(z_0) has mean 0 and variance s^2 + a^2, and the estimate is 0.5 log(1 + a^2 / s^2).
    a, s = 1.5, 0.5
    cluster = np.array([-a] * 4 + [a] * 4, "float32")
    mean = np.stack([cluster, np.zeros(8, "float32")], axis=1)
    log_var = np.full([8, 2], 2 * math.log(s), "float32")
    logits = tf.constant(np.repeat(np.eye(2, dtype="float32") * 80.0, 4, axis=0))
    assert losses.mi_continuous_discrete(mean, log_var, logits).numpy() == pytest.approx(
        0.5 * math.log(1 + a**2 / s**2), rel=1e-4)


@pytest.mark.parametrize("option, term, reference", [
    ("category_balance", "kl_discrete_marginal",
     lambda mean, log_var, cat: sum(_np_kl_marginal(c) for c in cat)),
    ("latent_independence", "mi_continuous_discrete",
     lambda mean, log_var, cat: sum(_np_mi_continuous_discrete(mean, log_var, c) for c in cat)),
])
def test_an_optional_term_is_reported_and_adds_its_weighted_value_only_when_on(option, term, reference):
    rng = np.random.RandomState(7)
    x = (rng.rand(6, 32, 32, 1) > 0.5).astype("float32")
    logits = tf.constant(rng.randn(6, 32, 32, 1).astype("float32"))
    mean, log_var = rng.randn(6, 4).astype("float32"), rng.randn(6, 4).astype("float32")
    cat = [rng.randn(6, 3).astype("float32") * 2, rng.randn(6, 2).astype("float32")]
    cap = jv.Capacity(0.0, 5.0, 1000, 30.0)
    off = losses.jointvae_loss(x, logits, mean, log_var, cat, 10, cap, cap)
    on = losses.jointvae_loss(x, logits, mean, log_var, cat, 10, cap, cap, **{option: 20.0})
    value = reference(mean, log_var, cat)
    assert off[term].numpy() == pytest.approx(value, rel=1e-4)
    assert on["loss"].numpy() - off["loss"].numpy() == pytest.approx(20.0 * value, rel=1e-3)
    assert on["reconstruction_loss"].numpy() == off["reconstruction_loss"].numpy()
    # Without continuous latents there is no I(z; c): reported as 0.
    assert losses.jointvae_loss(x, logits, None, None, cat, 10, cap, cap)["mi_continuous_discrete"].numpy() == 0


@pytest.mark.parametrize("name", ["category_balance", "latent_independence"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "1"])
def test_a_bad_term_weight_is_refused_naming_it_and_the_value(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number >= 0 \(0: off\), got {re.escape(repr(value))}$"):
        losses.check_term_weight(name, value)


@pytest.mark.parametrize("step, expected", [(0, 1.0), (50, 3.0), (100, 5.0), (1000, 5.0)])
def test_capacity_schedule(step, expected):
    cap = jv.Capacity(1.0, 5.0, 100, 30.0)
    assert losses.capacity_value(cap, step).numpy() == pytest.approx(expected)


def test_capacity_upper_clip():
    cap = jv.Capacity(0.0, 10.0, 100, 30.0)
    assert losses.capacity_value(cap, 100, upper=math.log(3)).numpy() == pytest.approx(math.log(3), rel=1e-6)
    assert losses.capacity_value(cap, 5, upper=math.log(3)).numpy() == pytest.approx(0.5)


def test_jointvae_loss_combines_the_terms():
    rng = np.random.RandomState(3)
    x = (rng.rand(4, 32, 32, 1) > 0.5).astype("float32")
    logits = rng.randn(4, 32, 32, 1).astype("float32")
    mean, log_var = rng.randn(4, 6).astype("float32"), rng.randn(4, 6).astype("float32")
    cat = [rng.randn(4, 3).astype("float32"), rng.randn(4, 2).astype("float32")]
    cz, cc = jv.Capacity(0.0, 40.0, 1000, 150.0), jv.Capacity(0.0, 5.0, 1000, 100.0)
    terms = losses.jointvae_loss(x, tf.constant(logits), mean, log_var, cat, 600, cz, cc)
    kl_z = _np_kl_normal(mean, log_var).sum()
    kl_c = _np_kl_cat(cat[0]) + _np_kl_cat(cat[1])
    c_z, c_c = 24.0, min(3.0, math.log(3) + math.log(2))
    expected = _np_bce(x, logits) + 150 * abs(kl_z - c_z) + 100 * abs(kl_c - c_c)
    assert terms["loss"].numpy() == pytest.approx(expected, rel=1e-5)
    assert terms["capacity_discrete"].numpy() == pytest.approx(c_c, rel=1e-6)
    assert terms["kl_continuous_per_dim"].shape == (6,)
    assert terms["kl_discrete_per_latent"].shape == (2,)


def test_jointvae_loss_without_one_kind_of_latent():
    x = np.ones((2, 32, 32, 1), "float32")
    logits = tf.zeros([2, 32, 32, 1])
    cap = jv.Capacity(0.0, 5.0, 10, 30.0)
    only_disc = losses.jointvae_loss(x, logits, None, None, [tf.zeros([2, 4])], 1, cap, cap)
    assert only_disc["kl_continuous"].numpy() == 0.0
    only_cont = losses.jointvae_loss(x, logits, tf.zeros([2, 3]), tf.zeros([2, 3]), [], 1, cap, cap)
    assert only_cont["kl_discrete"].numpy() == 0.0
    assert only_cont["loss"].numpy() == pytest.approx(_np_bce(x, np.zeros((2, 32, 32, 1))) + 30 * 0.5, rel=1e-5)


@pytest.mark.parametrize("step", [0, 1, 7, 100, 250, 10**6])
def test_temperature_value_matches_numpy(step):
    anneal = jv.Anneal(1.0, 0.5, 250)
    expected = 1.0 * (0.5 / 1.0) ** (min(step, 250) / 250)
    assert losses.temperature_value(anneal, step).numpy() == pytest.approx(expected, rel=1e-6)
    assert losses.temperature_value(anneal, tf.constant(step, tf.int64)).numpy() == pytest.approx(expected, rel=1e-6)
    rising = jv.Anneal(0.1, 2.0, 50)  # end > start anneals upwards, the same formula
    assert losses.temperature_value(rising, step).numpy() == pytest.approx(
        0.1 * 20.0 ** (min(step, 50) / 50), rel=1e-6)
    assert losses.temperature_value(0.67, step).numpy() == np.float32(0.67)


def _np_log_exp_concrete(x, logits, temperature):
    """Log density of the ExpConcrete distribution at x (log of a relaxed one-hot), Maddison et al. 2017:
    p(x) = (K-1)! T^(K-1) prod_k [a_k exp(-T x_k)] / (sum_i a_i exp(-T x_i))^K, with a = softmax(logits)."""
    k = x.shape[-1]
    log_alpha = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    terms = log_alpha - temperature * x
    top = terms.max(axis=-1, keepdims=True)
    log_sum = (top + np.log(np.exp(terms - top).sum(axis=-1, keepdims=True)))[..., 0]
    return math.lgamma(k) + (k - 1) * np.log(temperature) + terms.sum(axis=-1) - k * log_sum


def _np_exp_concrete_samples(logits, temperature, rng):
    """x = log_softmax((logits + Gumbel noise) / T): log-space relaxed one-hot samples."""
    y = (logits - np.log(-np.log(rng.uniform(size=logits.shape)))) / temperature
    return y - (y.max(axis=-1, keepdims=True) + np.log(np.exp(y - y.max(axis=-1, keepdims=True)).sum(
        axis=-1, keepdims=True)))


def test_kl_concrete_matches_the_numpy_concrete_density():
    rng = np.random.RandomState(4)
    temperature = 0.67
    a, b = rng.randn(4000, 10) * 2, rng.randn(4000, 3)
    xa, xb = _np_exp_concrete_samples(a, temperature, rng), _np_exp_concrete_samples(b, temperature, rng)

    def expected(logits, x):
        return np.mean(_np_log_exp_concrete(x, logits, temperature) - _np_log_exp_concrete(
            x, np.zeros_like(logits), temperature))

    f32 = lambda v: tf.constant(v, tf.float32)  # noqa: E731
    value = losses.kl_concrete_uniform(f32(a), f32(xa), temperature).numpy()
    assert value == pytest.approx(expected(a, xa), rel=1e-4)
    per_latent = losses.kl_concrete_uniform([f32(a), f32(b)], [f32(xa), f32(xb)], tf.constant(temperature)).numpy()
    np.testing.assert_allclose(per_latent, [expected(a, xa), expected(b, xb)], rtol=1e-4)
    # Exactly 0 at uniform posteriors (q = p at every sample); positive on average otherwise.
    x0 = _np_exp_concrete_samples(np.zeros((50, 5)), temperature, rng)
    assert abs(losses.kl_concrete_uniform(tf.zeros([50, 5]), f32(x0), temperature).numpy()) < 1e-5
    assert value > 0


def test_kl_concrete_estimates_converge_and_grow_past_log_k():
    """Two independent large Monte-Carlo estimates agree; a confident posterior at low T exceeds log K."""
    rng = np.random.RandomState(5)
    logits = np.tile(rng.randn(1, 4) * 2, (200000, 1))
    estimates = [losses.kl_concrete_uniform(tf.constant(logits, tf.float32), tf.constant(
        _np_exp_concrete_samples(logits, 0.5, rng), tf.float32), 0.5).numpy() for _ in range(2)]
    assert estimates[0] == pytest.approx(estimates[1], rel=0.02) and estimates[0] > 0
    confident = np.tile([[8.0, 0.0, 0.0, 0.0]], (20000, 1))
    x = _np_exp_concrete_samples(confident, 0.1, rng)
    assert losses.kl_concrete_uniform(tf.constant(confident, tf.float32), tf.constant(x, tf.float32),
                                      0.1).numpy() > math.log(4)


def test_jointvae_loss_with_the_concrete_kl_is_not_clipped_at_log_k():
    rng = np.random.RandomState(6)
    x = (rng.rand(4, 32, 32, 1) > 0.5).astype("float32")
    logits = rng.randn(4, 32, 32, 1).astype("float32")
    cat = [rng.randn(4, 3).astype("float32")]
    samples = [_np_exp_concrete_samples(cat[0].astype("float64"), 0.67, rng).astype("float32")]
    cc = jv.Capacity(0.0, 5.0, 1000, 100.0)
    terms = losses.jointvae_loss(x, tf.constant(logits), None, None, cat, 600, cc, cc,
                                 concrete_log_samples=samples, temperature=0.67)
    kl_c = losses.kl_concrete_uniform(cat[0], samples[0], 0.67).numpy()
    assert terms["capacity_discrete"].numpy() == pytest.approx(3.0)  # 5 * 600 / 1000, above log 3
    assert terms["kl_discrete_per_latent"].numpy() == pytest.approx([kl_c])
    assert terms["loss"].numpy() == pytest.approx(_np_bce(x, logits) + 100 * abs(kl_c - 3.0), rel=1e-5)
    categorical = losses.jointvae_loss(x, tf.constant(logits), None, None, cat, 600, cc, cc)
    assert categorical["capacity_discrete"].numpy() == pytest.approx(math.log(3), rel=1e-6)


# ------------------------------------------------------------------------------ likelihoods
def _np_sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def _np_nll(x, logits, likelihood):
    """-log p(x | logits) per pixel, float64, from the closed forms."""
    x = x.astype(np.float64)
    if likelihood == "bernoulli":
        p = _np_sigmoid(logits)
        return -(x * np.log(p) + (1 - x) * np.log(1 - p))
    if likelihood == "gaussian":  # N(sigmoid(l), sigma^2 = 1/2)
        return (x - _np_sigmoid(logits)) ** 2 + 0.5 * np.log(np.pi)
    if likelihood == "laplace":  # Laplace(sigmoid(l), b = 1/2): |x - mu| / b + log(2 b)
        return 2.0 * np.abs(x - _np_sigmoid(logits))
    lam = _np_sigmoid(logits)  # continuous Bernoulli: C(lam) lam^x (1 - lam)^(1 - x)
    log_c = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    return -(x * np.log(lam) + (1 - x) * np.log(1 - lam) + log_c)


def _np_cb_mean(logits):
    lam = _np_sigmoid(logits)
    return lam / (2 * lam - 1) + 1 / (2 * np.arctanh(1 - 2 * lam))


@pytest.mark.parametrize("likelihood", losses.LIKELIHOODS)
def test_reconstruction_loss_of_every_likelihood_matches_its_closed_form(likelihood):
    rng = np.random.RandomState(3)
    x = rng.rand(4, 6, 6, 2).astype("float32")
    # Away from logit 0, where the continuous Bernoulli's closed form has a removable 0/0.
    logits = (rng.choice([-1, 1], size=x.shape) * rng.uniform(0.2, 4.0, size=x.shape)).astype("float32")
    expected = _np_nll(x, logits, likelihood)
    np.testing.assert_allclose(losses.negative_log_likelihood(x, tf.constant(logits), likelihood), expected,
                               rtol=1e-4, atol=1e-5)
    assert losses.reconstruction_loss(x, tf.constant(logits), likelihood).numpy() == pytest.approx(
        expected.reshape(4, -1).sum(axis=1).mean(), rel=1e-5)
    assert losses.jointvae_loss(x, tf.constant(logits), None, None, [], 1, jv.Capacity(0, 1, 10, 1),
                                jv.Capacity(0, 1, 10, 1), likelihood=likelihood)["reconstruction_loss"].numpy() == \
        pytest.approx(expected.reshape(4, -1).sum(axis=1).mean(), rel=1e-5)


def test_bernoulli_is_the_reference_bce_bit_for_bit_and_tfd_bernoulli():
    rng = np.random.RandomState(4)
    x = rng.rand(3, 8, 8, 1).astype("float32")
    logits = tf.constant(rng.randn(3, 8, 8, 1).astype("float32") * 4)
    reference = tf.reduce_mean(tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=[1, 2, 3]))
    assert losses.reconstruction_loss(x, logits).numpy() == reference.numpy()  # the default, exactly
    assert losses.reconstruction_loss(x, logits, "bernoulli").numpy() == reference.numpy()
    np.testing.assert_allclose(losses.negative_log_likelihood(x, logits),
                               -losses.likelihood_distribution(logits).log_prob(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("likelihood", losses.LIKELIHOODS)
def test_likelihood_mean_is_the_distributions_mean(likelihood):
    logits = np.array([-30.0, -5.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 5.0, 30.0], "float32")
    mean = losses.likelihood_mean(tf.constant(logits), likelihood).numpy()
    assert np.all((mean >= 0) & (mean <= 1)) and np.all(np.isfinite(mean))
    if likelihood == "continuous_bernoulli":
        away = np.abs(logits) > 0.1
        np.testing.assert_allclose(mean[away], _np_cb_mean(logits[away]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mean[~away], 0.5 + logits[~away] / 12, atol=1e-5)  # its Taylor series at 0
        # Pulled towards 1/2 relative to the Bernoulli's sigmoid: the images differ.
        assert mean[3] == pytest.approx(0.5, abs=1e-4) and mean[1] > _np_sigmoid(logits[1])
    else:
        np.testing.assert_allclose(mean, _np_sigmoid(logits), rtol=1e-6)
    np.testing.assert_allclose(losses.likelihood_distribution(tf.constant(logits), likelihood).mean(), mean,
                               rtol=1e-5, atol=1e-6)


def test_the_fixed_scales_are_the_documented_ones():
    # Gaussian: variance 1/2, so -log p is the squared error plus log(pi) / 2; Laplace: scale 1/2, twice |error|.
    x, logits = np.full((1, 1, 1, 1), 0.25, "float32"), tf.zeros([1, 1, 1, 1])
    assert losses.reconstruction_loss(x, logits, "gaussian").numpy() == pytest.approx(0.25**2 + 0.5 * math.log(math.pi))
    assert losses.reconstruction_loss(x, logits, "laplace").numpy() == pytest.approx(2 * 0.25)
    assert losses.GAUSSIAN_SCALE ** 2 == pytest.approx(0.5) and losses.LAPLACE_SCALE == 0.5


def test_continuous_bernoulli_is_normalised_on_the_unit_interval():
    grid = np.linspace(0.0, 1.0, 20001, dtype=np.float64)
    for logit in (-6.0, -0.7, 0.0, 2.5):
        # At logit 0 the density is uniform (the closed form's 0/0 is removable).
        density = (np.exp(-_np_nll(grid, np.full_like(grid, logit), "continuous_bernoulli")) if logit
                   else np.ones_like(grid))
        tf_density = np.exp(-losses.negative_log_likelihood(
            grid.astype("float32"), tf.fill([grid.size], np.float32(logit)), "continuous_bernoulli").numpy())
        np.testing.assert_allclose(tf_density, density, rtol=1e-4)
        assert np.trapezoid(tf_density, grid) == pytest.approx(1.0, abs=1e-4)


def test_unknown_likelihood_is_refused_naming_the_allowed_ones():
    message = "likelihood must be one of bernoulli, gaussian, laplace, continuous_bernoulli, got 'poisson'"
    images = np.zeros((1, 2, 2, 1), "float32")
    for call in (lambda: losses.reconstruction_loss(images, tf.zeros([1, 2, 2, 1]), "poisson"),
                 lambda: losses.likelihood_mean(tf.zeros([1]), "poisson"),
                 lambda: losses.check_likelihood("poisson")):
        with pytest.raises(ValueError, match=re.escape(message)):
            call()
