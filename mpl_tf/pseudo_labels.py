"""The labels the student learns from, drawn from the teacher's logits on the strong view."""

import tensorflow as tf


def targets(teacher_logits, label_type, seed):
    """Target distributions: `soft` is the teacher's softmax (differentiable), `argmax` and
    `sampled` are one-hot. `seed` is a shape-[2] int tensor for stateless sampling, so a resumed
    or replayed step draws the same labels."""
    num_classes = tf.shape(teacher_logits)[-1]
    if label_type == "soft":
        return tf.nn.softmax(teacher_logits, axis=-1)
    if label_type == "argmax":
        labels = tf.argmax(teacher_logits, axis=-1)
    elif label_type == "sampled":
        sample_logits = tf.cast(teacher_logits, tf.float32)
        # int32 seeds: XLA's kernel takes no other (without XLA both draw the same labels).
        labels = tf.random.stateless_categorical(sample_logits, 1,
                                                 seed=tf.cast(seed, tf.int32))[:, 0]
    else:
        raise ValueError(f"unknown label_type {label_type!r}")
    return tf.one_hot(labels, num_classes, dtype=teacher_logits.dtype)


def step_seed(seed, step):
    """A per-step, per-replica seed for stateless sampling."""
    context = tf.distribute.get_replica_context()
    replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
    stream = tf.cast(step, tf.int64) * context.num_replicas_in_sync + replica
    return tf.stack([tf.constant(seed, tf.int64), stream])
