"""The tf.distribute strategy a run trains under, from `--strategy`."""

import tensorflow as tf


def strategy(name):
    """default: the current (no-op) strategy; mirrored: all local devices (GPUs, else CPUs)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"unknown strategy {name!r}")
