"""Test session set-up: two logical CPU devices, so tf.distribute tests run without GPUs.

The CPU must be split before TensorFlow initialises its devices, hence here, at import.
jointvae_tf is imported before TensorFlow, as users import it, so the tests run on the
same (oneDNN) CPU kernels as training does.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jointvae_tf  # noqa: E402,F401  (before TensorFlow: see jointvae_tf.runtime)
import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS
    )
except RuntimeError:  # devices already initialised by an earlier import: tests that need two skip
    pass
