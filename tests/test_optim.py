"""The optimizer against hand-computed TF1 momentum updates, and the learning-rate schedule."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from mpl_tf import models

from mpl_tf.method import optim


def schedule(**kwargs):
    base = dict(peak=0.4, schedule="cosine", total_steps=100, warmup_steps=10, wait_steps=20)
    base.update(kwargs)
    return lambda step: float(optim.learning_rate(step, **base))


def test_schedule_waits_warms_up_and_decays_to_zero():
    lr = schedule()
    assert lr(0) == 0.0 and lr(19) == 0.0           # waiting
    assert lr(20) == pytest.approx(0.4 / 10)          # first warmup step: (s + 1) / W
    assert lr(29) == pytest.approx(0.4)               # warmup end
    assert lr(30) == pytest.approx(0.4)               # cosine start
    assert lr(65) == pytest.approx(0.2)               # half way through the 70 decay steps
    assert lr(100) == pytest.approx(0.0, abs=1e-12)   # final step
    constant = schedule(schedule="constant", wait_steps=0, warmup_steps=0)
    assert constant(0) == constant(99) == pytest.approx(0.4)


def test_nesterov_matches_tf1_semantics_across_an_lr_change():
    """a <- m a + g; w <- w - lr (g + m a): the step after an lr change uses the new lr on the
    whole accumulated velocity (Keras SGD would have baked the old lr into it)."""
    rates = {0: 0.0, 1: 0.0, 2: 0.5, 3: 0.1}
    opt = optim.MomentumSGD(lambda step: tf.gather(tf.constant(list(rates.values()),
                                                               tf.float64), step),
                            momentum=0.9, nesterov=True)
    var = keras.Variable(np.array([1.0, -2.0]), dtype="float64", name="kernel")
    opt.build([var])
    w, a = np.array([1.0, -2.0]), np.zeros(2)
    for step, g in enumerate([np.array([0.3, 0.1]), np.array([-0.2, 0.4]),
                              np.array([0.5, 0.5]), np.array([0.1, -0.3])]):
        opt.apply([tf.constant(g)], [var])
        a = 0.9 * a + g
        w = w - rates[step] * (g + 0.9 * a)
        np.testing.assert_allclose(var.numpy(), w, rtol=1e-12)
    assert int(opt.iterations) == 4


def test_weight_decay_skips_normalization_variables():
    dense = keras.layers.Dense(2, name="dense")
    norm = keras.layers.BatchNormalization(name="batch_norm")
    model = keras.Sequential([keras.Input((3,)), dense, norm], name="sequential")
    mask = models.weight_decay_mask(model)
    decayed = {v.path: d for v, d in zip(model.trainable_variables, mask)}
    assert decayed == {"sequential/dense/kernel": True, "sequential/dense/bias": True,
                       "sequential/batch_norm/gamma": False, "sequential/batch_norm/beta": False}
    opt = optim.MomentumSGD(lambda step: tf.constant(1.0, tf.float64), weight_decay=0.1)
    variables = model.trainable_variables
    opt.build(variables, mask)
    before = [v.numpy().copy() for v in variables]
    opt.apply([tf.zeros_like(v) for v in variables], variables)
    for v, b, d in zip(variables, before, mask):
        expected = b - 0.1 * b if d else b
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6)


def test_weight_decay_follows_the_layer_type_not_its_name():
    """A batch norm named like a weight and a dense layer named like a norm: the type decides."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="bn_norm_dense"),
                              keras.layers.BatchNormalization(name="conv_weights")])
    assert models.weight_decay_mask(model) == [True, True, False, False]


def test_clipping_uses_the_global_norm():
    opt = optim.MomentumSGD(lambda step: tf.constant(1.0, tf.float64), clip_norm=1.0)
    a = keras.Variable(np.zeros(2), dtype="float64", name="a")
    b = keras.Variable(np.zeros(1), dtype="float64", name="b")
    opt.build([a, b])
    opt.apply([tf.constant([3.0, 0.0], tf.float64), tf.constant([4.0], tf.float64)], [a, b])
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), [-0.6, 0.0, -0.8])
