"""The labels the student learns from, drawn from the teacher's logits on the strong view, by
the name `--label_type` takes.

A new label type is one module with a `targets(teacher_logits, seed)` function returning target
distributions, plus one line in `_MODULES`. Names are known without importing TensorFlow (the
flags are defined and checked before it is imported).
"""

import importlib

# name: module in this package
_MODULES = {
    "sampled": "sampled",
    "argmax": "argmax",
    "soft": "soft",
}
NAMES = tuple(_MODULES)


def labeler(label_type):
    """The `targets(teacher_logits, seed)` function of `label_type`: target distributions for
    `teacher_logits`, where `seed` is a shape-[2] int tensor for stateless sampling (see
    `step_seed`), so a resumed or replayed step draws the same labels. Looked up once, when the
    model is built: an import inside the traced step is something AutoGraph warns about."""
    return importlib.import_module(f"mpl_tf.method.pseudo_labels.{_MODULES[label_type]}").targets


def step_seed(seed, step):
    """A per-step, per-replica seed for stateless sampling."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
    stream = tf.cast(step, tf.int64) * context.num_replicas_in_sync + replica
    return tf.stack([tf.constant(seed, tf.int64), stream])
