"""sampled: one-hot labels drawn from the teacher's distribution (the paper's)."""

import tensorflow as tf


def targets(teacher_logits, seed):
    sample_logits = tf.cast(teacher_logits, tf.float32)
    # int32 seeds: XLA's kernel takes no other (without XLA both draw the same labels).
    labels = tf.random.stateless_categorical(sample_logits, 1, seed=tf.cast(seed, tf.int32))[:, 0]
    return tf.one_hot(labels, tf.shape(teacher_logits)[-1], dtype=teacher_logits.dtype)
