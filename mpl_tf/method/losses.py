"""Losses of the teacher and the student, each a per-replica share of a global-batch mean.

Every loss here is `sum over this replica's examples / global batch size`: summing the gradients
of these shares across replicas gives the gradient of the global mean, whatever the replica
count. Cross-entropy is written out as `-sum(p * log_softmax(z))` on purpose: the fused
`softmax_cross_entropy_with_logits` op has no second-order gradient for its labels, which
silently zeroes the exact meta-gradient (tests/test_feedback_gradients.py shows it).
"""

import tensorflow as tf


def cross_entropy(targets, logits):
    """Per-example cross-entropy of a target distribution and logits; differentiable in both."""
    return -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)


def smooth(targets, label_smoothing):
    """`(1 - ls) * p + ls / K`, the smoothing the released code applies to soft targets too."""
    if not label_smoothing:
        return targets
    num_classes = tf.cast(tf.shape(targets)[-1], targets.dtype)
    return (1.0 - label_smoothing) * targets + label_smoothing / num_classes


def one_hot(labels, logits):
    return tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)


def global_mean(per_example, global_batch_size):
    """This replica's share of the mean over the global batch."""
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, per_example.dtype)


def supervised(labels, logits, global_batch_size, label_smoothing=0.0):
    """Label-smoothed cross-entropy on labeled examples."""
    targets = smooth(one_hot(labels, logits), label_smoothing)
    return global_mean(cross_entropy(targets, logits), global_batch_size)


def uda_consistency(weak_logits, strong_logits, temperature, threshold, global_batch_size):
    """UDA's confidence-masked consistency, as released: returns (loss, mask).

    Targets are the teacher's weak-view predictions sharpened by `temperature`, held fixed; an
    example counts only if its sharpened confidence reaches `threshold`, and masked examples
    still count in the denominator (the fixed global batch size).
    """
    targets = tf.stop_gradient(tf.nn.softmax(weak_logits / temperature, axis=-1))
    mask = tf.cast(tf.reduce_max(targets, axis=-1) >= threshold, strong_logits.dtype)
    loss = global_mean(mask * cross_entropy(targets, strong_logits), global_batch_size)
    return loss, mask


def ramp(step, ramp_steps):
    """Linear ramp from 0 to 1 over `ramp_steps` (1 from the start when ramp_steps is 0)."""
    if not ramp_steps:
        return 1.0
    return tf.minimum(1.0, tf.cast(step, tf.float32) / float(ramp_steps))


def uda_objective(labeled_logits, labels, weak_logits, strong_logits, config):
    """The teacher's own objective, shared by MPL's teacher and the UDA baseline.

    Returns (label-smoothed supervised loss, unweighted consistency loss, consistency mask); the
    caller weighs the consistency with `config.uda_weight` and its ramp.
    """
    sup = supervised(labels, labeled_logits, config.labeled_batch_size, config.label_smoothing)
    consistency, mask = uda_consistency(weak_logits, strong_logits, config.uda_temperature,
                                        config.uda_threshold, config.global_unlabeled_batch_size)
    return sup, consistency, mask
