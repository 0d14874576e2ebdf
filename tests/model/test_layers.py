import keras
import numpy as np
import pytest
import tensorflow as tf

import jointvae_tf as jv


def test_gaussian_sampler_draws_from_the_posterior_in_training():
    sampler = jv.GaussianSampler(seed=0)
    mean = tf.fill([20000, 2], 3.0)
    log_var = tf.constant([[0.0, np.log(4.0)]] * 20000, tf.float32)
    z = sampler([mean, log_var], training=True).numpy()
    np.testing.assert_allclose(z.mean(axis=0), [3.0, 3.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 2.0], atol=0.05)


def test_gaussian_sampler_returns_the_mean_at_inference():
    sampler = jv.GaussianSampler(seed=0)
    mean, log_var = tf.random.normal([4, 3]), tf.random.normal([4, 3])
    np.testing.assert_array_equal(sampler([mean, log_var], training=False), mean)
    np.testing.assert_array_equal(sampler([mean, log_var]), mean)


def test_gumbel_sampler_relaxed_in_training_one_hot_at_inference():
    sampler = jv.GumbelSoftmaxSampler(temperature=0.67, seed=0)
    logits = tf.math.log(tf.constant([[0.7, 0.2, 0.1]] * 20000))
    c = sampler(logits, training=True).numpy()
    np.testing.assert_allclose(c.sum(axis=1), 1.0, atol=1e-5)
    assert (c > 0).all() and (c.max(axis=1) < 1.0).any()  # relaxed, not one-hot
    # Gumbel-max: the argmax of a relaxed sample is distributed as the categorical.
    np.testing.assert_allclose(np.bincount(c.argmax(axis=1), minlength=3) / len(c), [0.7, 0.2, 0.1], atol=0.015)
    hard = sampler(tf.constant([[0.1, 2.0, -1.0], [5.0, 0.0, 0.0]]), training=False).numpy()
    np.testing.assert_array_equal(hard, [[0, 1, 0], [1, 0, 0]])


def test_temperature_controls_relaxation():
    logits = tf.zeros([5000, 4])
    sharp = jv.GumbelSoftmaxSampler(temperature=0.05, seed=1)(logits, training=True).numpy()
    soft = jv.GumbelSoftmaxSampler(temperature=5.0, seed=1)(logits, training=True).numpy()
    assert sharp.max(axis=1).mean() > 0.95 > soft.max(axis=1).mean()
    with pytest.raises(ValueError, match="temperature must be > 0, got 0.0"):
        jv.GumbelSoftmaxSampler(temperature=0.0)


def test_stateless_seed_repeats_and_differs():
    sampler = jv.GaussianSampler()
    mean, log_var = tf.zeros([3, 5]), tf.zeros([3, 5])
    a = sampler([mean, log_var], training=True, seed=tf.constant([1, 2]))
    b = sampler([mean, log_var], training=True, seed=tf.constant([1, 2]))
    c = sampler([mean, log_var], training=True, seed=tf.constant([1, 3]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Without a seed, successive calls draw new noise.
    assert not np.allclose(sampler([mean, log_var], training=True), sampler([mean, log_var], training=True))


def test_gradients_flow_through_both_samplers():
    mean, log_var, logits = tf.Variable(tf.zeros([4, 3])), tf.Variable(tf.zeros([4, 3])), tf.Variable(tf.zeros([4, 5]))
    weights = tf.random.normal([5])
    with tf.GradientTape() as tape:
        z = jv.GaussianSampler(seed=0)([mean, log_var], training=True, seed=tf.constant([0, 1]))
        c = jv.GumbelSoftmaxSampler(seed=0)(logits, training=True, seed=tf.constant([0, 2]))
        objective = tf.reduce_sum(z**2) + tf.reduce_sum(c * weights)
    for grad in tape.gradient(objective, [mean, log_var, logits]):
        assert grad is not None and np.abs(grad.numpy()).sum() > 0


def test_config_round_trip():
    for layer in (jv.GaussianSampler(seed=3, deterministic=True), jv.GumbelSoftmaxSampler(0.5, seed=4)):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).get_config() == layer.get_config()


def test_replicas_draw_different_noise():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("needs two logical CPU devices (set up in conftest before TensorFlow initialises)")
    strategy = tf.distribute.MirroredStrategy(devices[:2])
    with strategy.scope():
        gaussian, gumbel = jv.GaussianSampler(), jv.GumbelSoftmaxSampler()

    @tf.function
    def draw():
        def replica_fn():
            seed = jv.model.layers.replica_seed(tf.constant([7, 1]))
            return (gaussian([tf.zeros([4, 3]), tf.zeros([4, 3])], training=True, seed=seed),
                    gumbel(tf.zeros([4, 3]), training=True, seed=seed))
        return strategy.run(replica_fn)

    z, c = draw()
    z0, z1 = (t.numpy() for t in strategy.experimental_local_results(z))
    c0, c1 = (t.numpy() for t in strategy.experimental_local_results(c))
    assert not np.allclose(z0, z1) and not np.allclose(c0, c1)


def test_call_temperature_overrides_and_same_noise_scales_as_the_temperature_says():
    sampler = jv.GumbelSoftmaxSampler(temperature=0.67, seed=0)
    logits, seed = tf.random.stateless_normal([64, 5], seed=[0, 1]) * 2, tf.constant([3, 4])
    default = sampler(logits, training=True, seed=seed)
    np.testing.assert_array_equal(default, sampler(logits, training=True, seed=seed, temperature=0.67))
    np.testing.assert_array_equal(default, sampler(logits, training=True, seed=seed, temperature=tf.constant(0.67)))
    hot = sampler(logits, training=True, seed=seed, temperature=tf.constant(2.0)).numpy()
    cold = sampler(logits, training=True, seed=seed, temperature=0.25).numpy()
    # Same Gumbel noise g: T * log(y) = logits + g - T * logsumexp(...), so T1 log y1 - T2 log y2 is constant per row.
    difference = 2.0 * np.log(hot) - 0.25 * np.log(cold)
    np.testing.assert_allclose(difference - difference[:, :1], 0.0, atol=2e-4)
    assert (cold.max(axis=1) > hot.max(axis=1)).all()
    np.testing.assert_array_equal(cold.argmax(axis=1), hot.argmax(axis=1))  # the same Gumbel-max category
    y, log_y = sampler(logits, training=True, seed=seed, return_log_sample=True)
    np.testing.assert_array_equal(y, tf.exp(log_y))
    mode, none = sampler(logits, training=False, return_log_sample=True)
    assert none is None and set(np.unique(mode)) == {0.0, 1.0}


def test_straight_through_is_exactly_one_hot_with_the_relaxed_gradient():
    logits = tf.Variable(tf.random.stateless_normal([256, 6], seed=[1, 2]))
    weights = tf.random.stateless_normal([256, 6], seed=[3, 4])
    seed, outputs, grads = tf.constant([5, 6]), {}, {}
    for straight in (False, True):
        sampler = jv.GumbelSoftmaxSampler(temperature=0.5, straight_through=straight, seed=0)
        with tf.GradientTape() as tape:
            outputs[straight] = sampler(logits, training=True, seed=seed)
            objective = tf.reduce_sum(outputs[straight] * weights)
        grads[straight] = tape.gradient(objective, logits).numpy()
    soft, hard = outputs[False].numpy(), outputs[True].numpy()
    np.testing.assert_array_equal(hard, np.eye(6, dtype="float32")[soft.argmax(axis=1)])  # exactly, no round-off
    np.testing.assert_array_equal(grads[True], grads[False])
    assert np.abs(grads[True]).sum() > 0
    st = jv.GumbelSoftmaxSampler(straight_through=True, seed=0)
    np.testing.assert_array_equal(st(logits, training=False), tf.one_hot(tf.argmax(logits, axis=-1), 6))
    config = st.get_config()
    assert config["straight_through"] is True and jv.GumbelSoftmaxSampler.from_config(config).straight_through


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_samplers_compute_in_float32_under_a_mixed_policy(policy):
    """tfp refuses bfloat16 ("data type ... not inexact"): under a mixed policy the samplers take float32."""
    with jv.precision_policy(policy):
        gaussian, gumbel = jv.GaussianSampler(seed=0), jv.GumbelSoftmaxSampler(seed=0, straight_through=True)
        dense = keras.layers.Dense(3)
    assert keras.config.dtype_policy().name == "float32"  # the block restored the global policy
    assert dense.compute_dtype != "float32"
    for sampler in (gaussian, gumbel):
        assert sampler.compute_dtype == "float32" and sampler.dtype_policy.name == "float32"
    low = dense(tf.random.stateless_normal([8, 4], seed=[0, 1]))  # logits in the policy's dtype
    assert low.dtype == dense.compute_dtype
    seed = tf.constant([1, 2])
    c, log_c = gumbel(low, training=True, seed=seed, temperature=tf.constant(0.5), return_log_sample=True)
    z = gaussian([low, low], training=True, seed=seed)
    assert c.dtype == log_c.dtype == z.dtype == tf.float32
    expected = jv.GumbelSoftmaxSampler(seed=0, straight_through=True)(tf.cast(low, tf.float32), training=True,
                                                                       seed=seed, temperature=0.5)
    np.testing.assert_array_equal(c, expected)
    assert jv.GumbelSoftmaxSampler.from_config(gumbel.get_config()).compute_dtype == "float32"
