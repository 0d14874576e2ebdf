"""Test session set-up: two logical CPU devices, so tf.distribute tests run without GPUs.

The CPU must be split before TensorFlow initialises its devices, hence here, at import.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS
    )
except RuntimeError:  # devices already initialised by an earlier import: tests that need two skip
    pass
