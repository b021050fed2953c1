"""The teacher's own objective, shared by MPL's teacher and the UDA control: one training-mode
forward of [labeled; unlabeled weak; unlabeled strong] (one batch-norm batch for all three, as
released), label-smoothed supervised loss plus ramped, confidence-masked consistency."""

import collections

import tensorflow as tf

from mpl_tf.method import losses

TeacherObjective = collections.namedtuple(
    "TeacherObjective", ["loss", "supervised", "uda", "uda_mask", "strong_logits"])


def teacher_objective(network, x_l, y_l, x_uw, x_us, step, config):
    """The objective at optimizer step `step` (which drives the UDA ramp): its weighted sum,
    its two parts (consistency unweighted), the consistency mask and the strong-view logits,
    from which MPL draws its pseudo labels."""
    n_l, n_u = tf.shape(x_l)[0], tf.shape(x_uw)[0]
    logits = network(tf.concat([x_l, x_uw, x_us], axis=0), training=True)
    t_l, t_uw, t_us = tf.split(logits, [n_l, n_u, n_u], axis=0)
    supervised, uda, mask = losses.uda_objective(t_l, y_l, t_uw, t_us, config)
    weight = config.uda_weight * losses.ramp(step, config.uda_ramp_steps)
    loss = (tf.cast(config.teacher_supervised_weight, supervised.dtype)
            * supervised + tf.cast(weight, uda.dtype) * uda)
    return TeacherObjective(loss, supervised, uda, mask, t_us)
