"""Every registered pseudo-label type gives one target distribution per example; each one's
own promise (the argmax, reproducible draws from the teacher, a differentiable softmax)."""

import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method import pseudo_labels

LOGITS = tf.constant([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [0.5, 0.5, 0.6]], tf.float64)
SEED = tf.constant([7, 3], tf.int64)


@pytest.mark.parametrize("label_type", pseudo_labels.NAMES)
def test_every_type_gives_distributions_of_the_logits_dtype(label_type):
    targets = pseudo_labels.labeler(label_type)(LOGITS, SEED)
    assert targets.dtype == LOGITS.dtype and targets.shape == LOGITS.shape
    np.testing.assert_allclose(tf.reduce_sum(targets, -1).numpy(), 1.0, rtol=1e-12)
    assert float(tf.reduce_min(targets)) >= 0.0


def test_argmax_and_soft():
    np.testing.assert_array_equal(pseudo_labels.labeler("argmax")(LOGITS, SEED).numpy(),
                                  np.eye(3)[[0, 1, 2]])
    with tf.GradientTape() as tape:
        tape.watch(LOGITS)
        soft = pseudo_labels.labeler("soft")(LOGITS, SEED)
        first_class = soft[:, 0]
    np.testing.assert_allclose(soft.numpy(), tf.nn.softmax(LOGITS).numpy())
    assert float(tf.reduce_max(tf.abs(tape.gradient(first_class, LOGITS)))) > 0


def test_sampled_labels_are_reproducible_draws_from_the_teacher():
    logits = tf.tile(tf.math.log(tf.constant([[0.7, 0.2, 0.1]], tf.float32)), [4000, 1])
    first = pseudo_labels.labeler("sampled")(logits, SEED)
    np.testing.assert_array_equal(first.numpy(),
                                  pseudo_labels.labeler("sampled")(logits, SEED).numpy())
    assert not np.array_equal(first.numpy(), pseudo_labels.labeler("sampled")(
        logits, tf.constant([7, 4], tf.int64)).numpy())
    np.testing.assert_allclose(tf.reduce_mean(first, 0).numpy(), [0.7, 0.2, 0.1], atol=0.03)
    assert set(np.unique(first.numpy())) == {0.0, 1.0}
