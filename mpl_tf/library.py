"""What a library user needs besides their own two Keras networks: the settings, the optimizers
and the batches `MetaPseudoLabels.train_step` expects.

The train step reads its settings from a `Config` (the command line's, with the same defaults),
normalises every loss by the config's *global* batch sizes, and drives optimizers that are not
Keras ones: `MomentumSGD` takes globally summed gradients (the dot feedback needs the student's
anyway), owns the float16 loss scale, can discard an update (the non-finite guard) and tells the
exact feedback its step size. These helpers build those pieces with as few arguments as
possible, so `model.fit` works as for any Keras model.
"""

import functools

import tensorflow as tf

from mpl_tf import cli
from mpl_tf.method import optim
from mpl_tf.config import Config
from mpl_tf.durable.seeds import stream_seed

UNKNOWN_LABEL = -1  # a hidden unlabeled label that is not known (only logged, never trained on)
SHUFFLE_WINDOW = 10_000  # examples shuffled at a time when there are more (or unknown many)


def make_config(**settings):
    """A validated `Config`: the command line's defaults, with `settings` (flag names without
    the dashes) replacing them; raises ConfigError (one line) for a value that cannot run.

    What the train step reads: labeled_batch_size, unlabeled_batch_size (or uda_ratio), seed,
    label_type, feedback, feedback_sign, feedback_baseline_decay, feedback_weight,
    label_smoothing, the UDA settings (uda_weight, uda_temperature, uda_threshold,
    uda_ramp_steps) and FixMatch's (fixmatch_threshold, fixmatch_weight)."""
    return cli.validated(Config(**settings))


def sgd(learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=0.0,
        name="sgd"):
    """A `MomentumSGD` (TF1 momentum semantics) at a constant `learning_rate`, or at
    `learning_rate(step)` when it is a function of the optimizer's step (e.g.
    `functools.partial(mpl_tf.learning_rate, peak=0.1, schedule="cosine", total_steps=N)`)."""
    schedule = learning_rate if callable(learning_rate) else functools.partial(
        optim.learning_rate, peak=float(learning_rate), schedule="constant", total_steps=1)
    return optim.MomentumSGD(schedule, momentum=momentum, nesterov=nesterov,
                             weight_decay=weight_decay, clip_norm=clip_norm, name=name)


def training_batches(labeled, unlabeled, config, weak=None, strong=None, seed=0):
    """Infinite global batches `((x_l, y_l), (weak(x_u), strong(x_u), y_u))` of the config's
    batch sizes, shuffled with `seed`; what `model.fit` takes (under a strategy it splits each
    global batch over the replicas).

    `labeled`: `(images, labels)` arrays, or a tf.data.Dataset of `(image, label)` examples.
    `unlabeled`: images, or a Dataset of images or of `(image, hidden_label)` examples (hidden
    labels only measure the pseudo labels' accuracy; unknown ones are -1).
    `weak`, `strong`: functions of a batch of inputs returning a view of it (default: the
    inputs themselves); the labeled batch gets the weak view, as in the paper.
    """
    weak = weak or _same
    strong = strong or _same
    labeled = _batches(_examples(labeled), config.labeled_batch_size,
                       stream_seed(seed, "labeled_order"))
    unlabeled = _examples(unlabeled)
    if not isinstance(unlabeled.element_spec, tuple):
        unlabeled = unlabeled.map(lambda x: (x, tf.constant(UNKNOWN_LABEL, tf.int32)))
    unlabeled = _batches(unlabeled, config.global_unlabeled_batch_size,
                         stream_seed(seed, "unlabeled_order"))
    return tf.data.Dataset.zip((
        labeled.map(lambda x, y: (weak(x), y)),
        unlabeled.map(lambda x, y: (weak(x), strong(x), y)),
    )).prefetch(tf.data.AUTOTUNE)


def _same(inputs):
    return inputs


def _examples(data):
    if isinstance(data, tf.data.Dataset):
        return data
    return tf.data.Dataset.from_tensor_slices(data)


def _batches(examples, batch_size, seed):
    """Reshuffled every pass, repeated, in full batches (every replica's share stays equal),
    labels as int32."""
    size = int(examples.cardinality())
    buffer = size if 0 < size < SHUFFLE_WINDOW else SHUFFLE_WINDOW
    return (examples.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(batch_size, drop_remainder=True)
            .map(lambda x, y: (x, tf.cast(y, tf.int32))))
