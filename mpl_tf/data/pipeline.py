"""tf.data input: batches `((x_l, y_l), (x_u_weak, x_u_strong, y_u_hidden))` and eval batches.

Batch sizes are global; `fit()` splits them over replicas. Random views come from stateless ops
seeded by (seed, batch index), so a run's input is the same every time it is replayed.
"""

import tensorflow as tf

_AUTOTUNE = tf.data.AUTOTUNE


def _gaussian_noise(std, stream):
    """A view that adds N(0, std^2) noise: Two Moons' stand-in for image augmentation."""

    def view(index, points):
        seed = tf.stack([tf.constant(stream, tf.int64), index])
        return points + std * tf.random.stateless_normal(tf.shape(points), seed,
                                                             dtype=points.dtype)

    return view


def _views(data, config):
    """(weak, strong) view functions of (batch index, images) for `data.view`."""
    if data.view == "gaussian_noise":
        base = 1000 * config.seed
        return (_gaussian_noise(config.weak_noise, base + 1),
                _gaussian_noise(config.strong_noise, base + 2))
    raise ValueError(f"unknown view family {data.view!r}")


def train_dataset(data, config, start_step=0):
    """Infinite, shuffled, seeded training batches, from batch `start_step` on (a resumed run
    sees exactly the batches an uninterrupted one would; skipping happens before augmenting)."""
    weak, strong = _views(data, config)
    labeled = (tf.data.Dataset.from_tensor_slices((data.labeled_images, data.labeled_labels))
               .shuffle(len(data.labeled_labels), seed=config.seed).repeat()
               .batch(config.labeled_batch_size, drop_remainder=True).skip(start_step)
               .enumerate(start_step)
               .map(lambda i, b: (weak(2 * i, b[0]), b[1]), num_parallel_calls=_AUTOTUNE))
    unlabeled = (tf.data.Dataset.from_tensor_slices((data.unlabeled_images,
                                                     data.unlabeled_labels))
                 .shuffle(len(data.unlabeled_labels), seed=config.seed + 1).repeat()
                 .batch(config.global_unlabeled_batch_size, drop_remainder=True)
                 .skip(start_step).enumerate(start_step)
                 .map(lambda i, b: (weak(2 * i + 1, b[0]), strong(i, b[0]), b[1]),
                      num_parallel_calls=_AUTOTUNE))
    return tf.data.Dataset.zip((labeled, unlabeled)).prefetch(_AUTOTUNE)


def eval_dataset(images, labels, batch_size):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
