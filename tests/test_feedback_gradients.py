"""The heart of the method, checked at the gradient level on tiny float64 models.

Each test runs the real `MetaPseudoLabels.train_step` and reads the teacher's gradient off its
plain-SGD update: with lr_T and no momentum, phi_after = phi - lr_T * grad, so the feedback's
share of the gradient is (phi_after[feedback=none] - phi_after[feedback=X]) / lr_T.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method import losses
from mpl_tf.errors import ConfigError
from mpl_testing import batch, build, one_step, tiny_config, weights


def feedback_gradient(config, data):
    """The teacher gradient contributed by the feedback term alone, and the step's logs (the
    teacher's first step: with Nesterov momentum from rest it moves by lr (1 + m) g)."""
    with_feedback, logs = one_step(config, data)
    without, _ = one_step(config.replace(feedback="none"), data)
    after_with, after_without = weights(with_feedback.teacher), weights(without.teacher)
    step = config.teacher_lr * (1 + config.momentum if config.nesterov else 1)
    return [(b - a) / step for a, b in zip(after_with, after_without)], logs


def labeled_loss_after_student_step(config, teacher_weights, student, data):
    """CE_l(theta - lr_S * grad L_pseudo(theta; phi)) computed from scratch (first order only)."""
    (x_l, y_l), (_, x_us, _) = data
    teacher = keras.models.clone_model(student)  # same architecture as the teacher
    teacher.set_weights(teacher_weights)
    targets = losses.smooth(tf.nn.softmax(teacher(x_us)), config.label_smoothing)
    probe = keras.models.clone_model(student)
    probe.set_weights(student.get_weights())
    with tf.GradientTape() as tape:
        logits = probe(x_us)
        pseudo_loss = -tf.reduce_mean(tf.reduce_sum(targets * tf.nn.log_softmax(logits), -1))
    grads = tape.gradient(pseudo_loss, probe.trainable_variables)
    step = config.student_lr * (1 + config.momentum if config.nesterov else 1)  # from rest
    for var, g in zip(probe.trainable_variables, grads):
        var.assign(var - step * g)
    labeled = tf.one_hot(y_l, logits.shape[-1], dtype=logits.dtype)
    return float(-tf.reduce_mean(tf.reduce_sum(labeled * tf.nn.log_softmax(probe(x_l)), -1)))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_exact_matches_central_finite_differences(momentum):
    """With Nesterov momentum from rest the student moves by lr (1 + m) g: still exact."""
    config = tiny_config(label_type="soft", feedback="exact", label_smoothing=0.1,
                         student_lr=0.7, momentum=momentum, nesterov=bool(momentum))
    data = batch(config)
    grad, _ = feedback_gradient(config, data)


    fresh = build(config)  # same seeds: the weights the step started from
    phi = weights(fresh.teacher)
    rng = np.random.default_rng(1)
    eps = 1e-5
    for _ in range(3):
        direction = [rng.normal(size=w.shape) for w in phi]
        plus = labeled_loss_after_student_step(
            config, [w + eps * d for w, d in zip(phi, direction)], fresh.student, data)
        minus = labeled_loss_after_student_step(
            config, [w - eps * d for w, d in zip(phi, direction)], fresh.student, data)
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grad, direction))
        assert abs(numeric) > 1e-6, "the meta-gradient should not vanish on this batch"
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("label_type", ["argmax", "sampled"])
def test_taylor_approximates_dot_for_a_small_student_lr(label_type):
    config = tiny_config(label_type=label_type, student_lr=1e-3)
    data = batch(config)
    _, taylor_logs = one_step(config, data)
    _, dot_logs = one_step(config.replace(feedback="dot"), data)
    h_taylor, h_dot = taylor_logs["feedback_h"], dot_logs["feedback_h"]
    assert abs(h_dot) > 1e-7
    np.testing.assert_allclose(h_taylor, h_dot, rtol=1e-2)


def test_taylor_minus_dot_shrinks_quadratically_with_the_student_lr():
    """The two differ by the second-order term of the Taylor expansion: O(lr^2)."""
    data = batch(tiny_config())
    gaps = []
    for lr in (1e-2, 1e-3):
        config = tiny_config(student_lr=lr)
        h_taylor = one_step(config, data)[1]["feedback_h"]
        h_dot = one_step(config.replace(feedback="dot"), data)[1]["feedback_h"]
        gaps.append(abs(h_taylor - h_dot))
    assert 30 < gaps[0] / gaps[1] < 300


def _helpful_pseudo_label_batch(config):
    """Labeled examples equal the unlabeled ones and carry the teacher's own argmax labels, so a
    student step on the teacher's pseudo labels lowers the student's labeled loss."""
    (_, _), (x_uw, x_us, y_u) = batch(config)

    teacher_labels = tf.argmax(build(config).teacher(x_us), axis=-1, output_type=tf.int32)
    return (x_us, teacher_labels), (x_uw, x_us, y_u)


@pytest.mark.parametrize("feedback", ["taylor", "dot"])
def test_sign_teacher_raises_the_probability_of_a_label_that_helped(feedback):
    config = tiny_config(feedback=feedback, labeled_batch_size=6)
    data = _helpful_pseudo_label_batch(config)
    x_us, labels = data[0]
    with_feedback, logs = one_step(config, data)
    without, _ = one_step(config.replace(feedback="none"), data)
    assert logs["feedback_h"] > 0, "the step on helpful labels should lower the labeled loss"

    def log_prob(teacher):
        logp = tf.nn.log_softmax(teacher(x_us))
        return float(tf.reduce_sum(tf.gather(logp, labels, batch_dims=1)))

    assert log_prob(with_feedback.teacher) > log_prob(without.teacher) + 1e-9
    released, _ = one_step(config.replace(feedback_sign="released"), data)
    assert log_prob(released.teacher) < log_prob(without.teacher) - 1e-9


@pytest.mark.parametrize("label_type,feedback", [("argmax", "taylor"), ("sampled", "taylor"),
                                                 ("argmax", "dot"), ("soft", "exact")])
def test_teacher_feedback_gradient_is_not_zero(label_type, feedback):
    config = tiny_config(label_type=label_type, feedback=feedback)
    grad, logs = feedback_gradient(config, batch(config))
    assert max(float(np.max(np.abs(g))) for g in grad) > 1e-6
    assert logs["feedback_h"] != 0.0


def test_the_released_soft_label_term_is_inert_and_rejected():
    """CE(stop_grad(softmax(z)), z) has gradient softmax(z) - softmax(z) = 0 in z: the released
    code's teacher term. The config refuses the combination that would reproduce it."""
    z = tf.Variable(np.random.default_rng(0).normal(size=(4, 3)))
    with tf.GradientTape() as tape:
        inert = tf.reduce_sum(losses.cross_entropy(tf.stop_gradient(tf.nn.softmax(z)), z))
    assert float(tf.reduce_max(tf.abs(tape.gradient(inert, z)))) < 1e-12
    with pytest.raises(ConfigError, match="zero gradient"):
        tiny_config(label_type="soft", feedback="taylor")
    with pytest.raises(ConfigError, match="needs --label_type=soft"):
        tiny_config(label_type="argmax", feedback="exact")


def test_fused_cross_entropy_would_zero_the_exact_meta_gradient():
    """Why losses.cross_entropy is written out: the fused op drops the second-order path."""
    rng = np.random.default_rng(0)
    w = tf.Variable(rng.normal(size=(2, 3)))
    phi = tf.Variable(rng.normal(size=(3,)))
    x = tf.constant(rng.normal(size=(4, 2)))

    def meta_gradient(cross_entropy):
        with tf.GradientTape() as outer:
            targets = tf.nn.softmax(phi + tf.zeros((4, 3), tf.float64))
            with tf.GradientTape() as inner:
                loss = tf.reduce_sum(cross_entropy(targets, x @ w))
            g = inner.gradient(loss, w)
            probe = tf.reduce_sum(g * tf.constant(rng.normal(size=(2, 3))))
        return outer.gradient(probe, phi)

    fused = meta_gradient(lambda t, z: tf.nn.softmax_cross_entropy_with_logits(t, z))
    ours = meta_gradient(losses.cross_entropy)
    assert fused is None or float(tf.reduce_max(tf.abs(fused))) == 0.0
    assert float(tf.reduce_max(tf.abs(ours))) > 1e-3
