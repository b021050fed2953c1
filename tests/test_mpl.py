"""MetaPseudoLabels.train_step beyond the feedback math: the student's update, the baseline's
state, and the step under MirroredStrategy."""

import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method import losses
from mpl_tf.method.build import build_model
from mpl_testing import (NUM_CLASSES, assert_same_student_statistics, batch, build,
                         distributed_step_config, one_device_and_two_replicas, one_step,
                         tiny_config, weights)


def test_student_update_equals_a_hand_computed_sgd_step():
    config = tiny_config(label_type="argmax", label_smoothing=0.2, student_lr=0.3)
    data = batch(config)
    (_, _), (_, x_us, _) = data
    start = build(config)
    targets = tf.one_hot(tf.argmax(start.teacher(x_us), axis=-1), NUM_CLASSES, dtype=tf.float64)
    targets = 0.8 * targets + 0.2 / NUM_CLASSES
    with tf.GradientTape() as tape:
        logp = tf.nn.log_softmax(start.student(x_us))
        loss = -tf.reduce_mean(tf.reduce_sum(targets * logp, axis=-1))
    grads = tape.gradient(loss, start.student.trainable_variables)
    expected = [w - 0.3 * g.numpy() for w, g in zip(weights(start.student), grads)]

    stepped, _ = one_step(config, data)
    for got, want in zip(weights(stepped.student), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_baseline_persists_and_moves_across_steps():
    decay = 0.9
    config = tiny_config(feedback_baseline_decay=decay)
    model = build(config)
    expected = 0.0
    seen = []
    for step in range(3):
        model.reset_metrics()
        logs = model.train_step(batch(config, seed=step))
        h = float(logs["feedback_h"])
        expected = decay * expected + (1 - decay) * h
        assert float(model.feedback_baseline) == pytest.approx(expected, rel=1e-6, abs=1e-12)
        assert float(logs["feedback_coefficient"]) == pytest.approx(h - expected, rel=1e-5,
                                                                   abs=1e-9)
        seen.append(float(model.feedback_baseline))
    assert len(set(seen)) == 3 and seen[-1] != 0.0


def test_no_baseline_leaves_h_untouched():
    config = tiny_config(feedback_baseline_decay=0.0)
    model, logs = one_step(config, batch(config))
    assert float(model.feedback_baseline) == 0.0
    assert logs["feedback_coefficient"] == logs["feedback_h"]


def test_uda_consistency_and_the_ramp_enter_the_teacher_loss():
    config = tiny_config(uda_weight=2.0, uda_ramp_steps=4, uda_threshold=0.0, feedback="none")
    model = build(config)
    data = batch(config)
    first = model.train_step(data)
    assert float(first["teacher_loss"]) == pytest.approx(float(first["teacher_supervised"]))
    model.reset_metrics()
    second = model.train_step(data)  # step 1 of 4: weight 2 * 1/4
    expected = float(second["teacher_supervised"]) + 0.5 * float(second["teacher_uda"])
    # The logs are float32 metrics (of float64 losses): equal to within their rounding.
    assert float(second["teacher_loss"]) == pytest.approx(expected, rel=3e-7)
    assert float(second["uda_mask_ratio"]) == 1.0


@pytest.mark.parametrize("method", ["supervised", "uda"])
def test_controls_train_their_one_network(method):
    config = tiny_config(uda_weight=1.0, uda_threshold=0.0)
    model = build(config, method=method)
    data = batch(config)
    before = weights(model.network)
    first = float(model.train_step(data)["loss"])
    for _ in range(20):
        model.reset_metrics()
        last = float(model.train_step(data)["loss"])
    assert last < first
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, weights(model.network)))


@pytest.mark.parametrize("label_type,feedback", [("argmax", "dot"), ("argmax", "taylor"),
                                                 ("soft", "exact")])
def test_mirrored_two_replicas_match_one_device(label_type, feedback):
    """Same global batch, 3 steps: two replicas must produce the weights one device does
    (float32; tolerance 1e-5 absolute), momentum slots and the baseline included."""
    config = distributed_step_config(label_type, feedback)
    data = batch(config, dtype="float32")
    start, one, two = one_device_and_two_replicas(config, data)
    for network in ("teacher", "student", "ema_network"):
        for a, b in zip(weights(getattr(one, network)), weights(getattr(two, network))):
            np.testing.assert_allclose(a, b, atol=1e-5)
        moved = [np.abs(a - b).max() for a, b in
                 zip(start[network != "teacher"], weights(getattr(one, network)))]
        assert max(moved) > 1e-3
    assert one.feedback_baseline.numpy() == pytest.approx(two.feedback_baseline.numpy(), abs=1e-6)
    assert (one.feedback_baseline.numpy() != 0.0) == (feedback != "exact")


def test_losses_are_shares_of_the_global_batch_mean():
    per_example = tf.constant([1.0, 2.0, 3.0])
    assert float(losses.global_mean(per_example, 6)) == pytest.approx(1.0)
    logits = tf.constant([[10.0, 0.0], [0.0, 0.1], [0.0, 0.0]])
    loss, mask = losses.uda_consistency(logits, logits, temperature=1.0, threshold=0.6,
                                        global_batch_size=4)
    np.testing.assert_array_equal(mask.numpy(), [1.0, 0.0, 0.0])
    expected = float(losses.cross_entropy(tf.nn.softmax(logits[:1]), logits[:1])[0]) / 4
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    smoothed = losses.smooth(tf.constant([[1.0, 0.0, 0.0, 0.0]]), 0.2)
    np.testing.assert_allclose(smoothed.numpy(), [[0.85, 0.05, 0.05, 0.05]], rtol=1e-6)


def _cnn_setup():
    config = tiny_config(model="cnn", labeled_batch_size=2, unlabeled_batch_size=4)
    rng = np.random.default_rng(0)
    images = lambda n: tf.constant(rng.uniform(0, 255, (n, 8, 8, 1)), tf.float32)  # noqa: E731
    data = ((images(2), tf.constant([0, 1], tf.int32)),
            (images(4), images(4), tf.constant([-1] * 4, tf.int32)))
    model = build_model(config, (8, 8, 1), NUM_CLASSES)
    return config, data, model


def test_student_batch_norm_statistics_move_once_per_step_on_the_unlabeled_batch():
    """The labeled before/after forwards measure the student; they must not move its BN
    statistics. By default the pseudo-label forward on the strong view alone moves them (the
    released code's first student forward is on [x_u_strong; x_l]: see test_feedback_forwards)."""
    config, data, model = _cnn_setup()
    reference = build_model(config, (8, 8, 1), NUM_CLASSES)
    reference.student(data[1][1], training=True)
    model.train_step(data)
    assert_same_student_statistics(model, reference)
