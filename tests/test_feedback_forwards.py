"""h measures the student's step and nothing else: with dropout on, the labeled losses before
and after the step see one dropout mask and one batch-norm batch (`--feedback_forwards=common`),
under every strategy and precision; the released construction stays available by name."""

import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method.build import build_model
from mpl_testing import (NUM_CLASSES, assert_same_student_statistics, run_fit, tiny_config,
                         two_cpu_mirrored_strategy, weights)

IMAGE_SHAPE = (8, 8, 1)


def dropout_config(**overrides):
    """A tiny CNN with dropout 0.2 before its classifier, UDA and a baseline on."""
    base = dict(model="cnn", dropout_rate=0.2, labeled_batch_size=4, unlabeled_batch_size=8,
                label_type="sampled", uda_weight=1.0, uda_threshold=0.3,
                feedback_baseline_decay=0.9, teacher_lr=0.1, student_lr=0.1)
    base.update(overrides)
    return tiny_config(**base)


def image_batch(config, seed=0):
    rng = np.random.default_rng(seed)
    images = lambda n: tf.constant(rng.uniform(0, 255, (n, *IMAGE_SHAPE)), tf.float32)  # noqa
    b, u = config.labeled_batch_size, config.global_unlabeled_batch_size
    return ((images(b), tf.constant(rng.integers(0, NUM_CLASSES, b), tf.int32)),
            (images(u), images(u), tf.constant(rng.integers(0, NUM_CLASSES, u), tf.int32)))


def stepped(config, data, steps):
    """A model built from config.seed after `steps` eager train steps; per-step h."""
    model = build_model(config, IMAGE_SHAPE, NUM_CLASSES)
    hs = [float(model.train_step(data)["feedback_h"]) * (k + 1) for k in range(steps)]
    return model, [h - previous for h, previous in zip(hs, [0.0] + hs[:-1])]


@pytest.mark.parametrize("estimator", ["taylor", "dot"])
def test_a_waiting_student_gives_h_zero_and_the_teacher_of_no_feedback_bit_for_bit(estimator):
    """While the student waits (lr exactly 0) it does not move, so h must be exactly 0 and the
    teacher must train exactly as with --feedback=none."""
    config = dropout_config(feedback=estimator, student_wait_steps=100, train_steps=200)
    data = image_batch(config)
    model, hs = stepped(config, data, steps=3)
    reference, _ = stepped(config.replace(feedback="none"), data, steps=3)
    assert hs == [0.0, 0.0, 0.0]
    for got, want in zip(weights(model.teacher), weights(reference.teacher)):
        np.testing.assert_array_equal(got, want)
    assert float(model.feedback_baseline.numpy()) == 0.0


@pytest.mark.parametrize("forwards", ["independent", "released"])
def test_the_other_constructions_measure_more_than_the_step(forwards):
    """What the choice costs: with fresh masks (or the released joint batch) a student that did
    not move still shows an h, which the teacher then follows."""
    config = dropout_config(student_wait_steps=100, train_steps=200, feedback_forwards=forwards)
    data = image_batch(config)
    model, hs = stepped(config, data, steps=2)
    reference, _ = stepped(config.replace(feedback="none"), data, steps=2)
    assert min(abs(h) for h in hs) > 1e-4
    assert max(np.abs(a - b).max() for a, b in zip(weights(model.teacher),
                                                   weights(reference.teacher))) > 0


def _taylor_and_dot(forwards):
    config = dropout_config(student_lr=1e-3, label_type="argmax", uda_weight=0.0,
                            feedback_baseline_decay=0.0, feedback_forwards=forwards)
    data = image_batch(config, seed=1)
    _, (h_taylor,) = stepped(config, data, steps=1)
    _, (h_dot,) = stepped(config.replace(feedback="dot"), data, steps=1)
    return h_taylor, h_dot


def test_with_dropout_taylor_agrees_with_dot_to_first_order():
    h_taylor, h_dot = _taylor_and_dot("common")
    assert abs(h_dot) > 1e-6
    np.testing.assert_allclose(h_taylor, h_dot, rtol=0.05)


def test_with_independent_masks_taylor_is_mostly_mask_noise():
    h_taylor, h_dot = _taylor_and_dot("independent")
    assert abs(h_taylor - h_dot) > 3 * abs(h_dot)


def test_released_forwards_update_batch_norm_once_on_the_joint_batch():
    """--feedback_forwards=released: the student's first forward is on [x_u_strong; x_l], and
    that forward alone moves its batch-norm statistics, as in the released step."""
    config = dropout_config(feedback_forwards="released", dropout_rate=0.0)
    data = image_batch(config)
    (x_l, _), (_, x_us, _) = data
    model = build_model(config, IMAGE_SHAPE, NUM_CLASSES)
    reference = build_model(config, IMAGE_SHAPE, NUM_CLASSES)
    reference.student(tf.concat([x_us, x_l], axis=0), training=True)
    model.train_step(data)
    assert_same_student_statistics(model, reference)


@pytest.mark.parametrize("where", ["mirrored", "bfloat16"])
def test_common_random_numbers_hold_under_replicas_and_16_bits(where):
    """Through the training driver, two replicas (or bfloat16 compute): a waiting student still
    gives h exactly 0 in every step of the window."""
    config = dropout_config(student_wait_steps=100, train_steps=200, log_every=4,
                            precision="bfloat16" if where == "bfloat16" else "float32")
    strategy = two_cpu_mirrored_strategy() if where == "mirrored" else tf.distribute.get_strategy()
    start = build_model(config, IMAGE_SHAPE, NUM_CLASSES)
    model = run_fit(strategy, config, image_batch(config),
                    (start.teacher.get_weights(), start.student.get_weights()), steps=4,
                    input_shape=IMAGE_SHAPE)
    assert float(model.trackers["feedback_h"].result()) == 0.0
    assert float(model.trackers["feedback_h_std"].result()) == 0.0
    assert float(model.trackers["labeled_loss_old"].result()) > 0.0
