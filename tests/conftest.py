"""Test-wide setup: two logical CPU devices (to run MirroredStrategy on a CPU-only machine),
configured before anything initialises TensorFlow's runtime; and the check that each test
module's Bazel target carries every repository file it reads (build_data.py)."""

import os

from build_data import build_data_check, pytest_collectreport, pytest_collectstart  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
