"""The EMA of the trained network: decay warm-up, every weight averaged (BN statistics too)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method import ema
from mpl_testing import batch, build, tiny_config


def test_decay_warms_up_then_caps():
    rates = [float(ema.decay_at(step, 0.995, start_step=2)) for step in (0, 1, 2, 3, 10000)]
    assert rates[:2] == [0.0, 0.0]
    assert rates[2] == pytest.approx(1 / 10) and rates[3] == pytest.approx(2 / 11)
    assert rates[4] == pytest.approx(0.995)


def _network_with_batch_norm(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    outputs = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(4)(inputs))
    return keras.Model(inputs, outputs)


def test_average_tracks_every_weight_including_batch_norm_statistics():
    network, average = _network_with_batch_norm(0), _network_with_batch_norm(1)
    averager = ema.ExponentialMovingAverage(network, average, decay=0.5)
    averager.reset()
    expected = [w.numpy().copy() for w in network.weights]
    rng = np.random.default_rng(0)
    for step in range(4):
        network(tf.constant(rng.normal(size=(8, 3)), tf.float32), training=True)  # BN stats move
        for w in network.trainable_weights:
            w.assign(w + 0.1)
        rate = min(0.5, (step + 1) / (step + 10))
        expected = [e - (1 - rate) * (e - w.numpy()) for e, w in zip(expected, network.weights)]
        averager.update(step)
    names = [w.path for w in average.weights]
    assert any("moving_mean" in n for n in names)
    for got, want in zip(average.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


def test_mpl_serves_the_ema_student_and_updates_it_after_the_student_step():
    config = tiny_config(ema_decay=0.9)
    model = build(config)
    assert model.serving_network is model.ema_network
    start = [w.numpy().copy() for w in model.student.weights]
    model.train_step(batch(config))
    rate = 1 / 10  # step 0 of the warm-up
    for avg, s0, s1 in zip(model.ema_network.weights, start, model.student.weights):
        np.testing.assert_allclose(avg.numpy(), s0 - (1 - rate) * (s0 - s1.numpy()), rtol=1e-9)
