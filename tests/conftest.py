"""Test-wide setup: two logical CPU devices (to run MirroredStrategy on a CPU-only machine),
configured before anything initialises TensorFlow's runtime; and the check that each test
module's Bazel target carries every repository file it reads (build_data.py)."""

import os

import pytest
from build_data import build_data_check, pytest_collectreport, pytest_collectstart  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


@pytest.fixture
def no_network(monkeypatch, capfd):
    """Every connection sent to a closed local port, and TFDS's own retries (which take
    minutes) off: the download path runs until the network, fast."""
    from tensorflow_datasets.core.download import downloader

    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: refused
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
    capfd.readouterr()
