"""tf.data input: training batches `((x_l, y_l), (x_u_weak, x_u_strong, y_u_hidden))` and
evaluation batches `(images, labels)`.

Every random view comes from stateless ops seeded by (run seed, stream, input pipeline, example
or batch position) and every shuffle from a fixed seed, so a replayed run sees the same input.
Images are augmented one example at a time in parallel maps (ImageNet images differ in size
until cropped), then batched with drop_remainder; Two Moons' Gaussian views act on batches.

Two forms of training input, both resumable at a step (the skip touches only cheap keys):
  train_dataset(data, config, start_step=0)            global batches from one pipeline;
  train_input(data, config, strategy, start_step=0)    per-replica batches from
      `strategy.distribute_datasets_from_function`, every split sharded by input pipeline:
      what training.train should pass to the training loop.
"""

import tensorflow as tf

from mpl_tf.durable import strategies
from mpl_tf.data import augment
from mpl_tf.durable.seeds import stream_seed

_AUTOTUNE = tf.data.AUTOTUNE


def train_dataset(data, config, start_step=0):
    """Infinite, shuffled, seeded training batches of the global batch sizes, from batch
    `start_step` on: a resumed run sees exactly the batches an uninterrupted one would (the
    skip happens on keys, before any loading or augmenting)."""
    return _batches(data, config, config.labeled_batch_size,
                    config.global_unlabeled_batch_size, num_pipelines=1, pipeline=0,
                    skip_batches=start_step)


def train_input(data, config, strategy, start_step=0):
    """A distributed dataset of per-replica batches (global batch / replicas), each input
    pipeline reading its own shard of every split, for fit() under `strategy`; from global
    step `start_step` on, as `train_dataset`."""
    strategies.check_batch_sizes(strategy, config.labeled_batch_size,
                                 config.global_unlabeled_batch_size)

    def dataset_fn(context):
        per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        return _batches(data, config,
                        context.get_per_replica_batch_size(config.labeled_batch_size),
                        context.get_per_replica_batch_size(config.global_unlabeled_batch_size),
                        context.num_input_pipelines, context.input_pipeline_id,
                        skip_batches=start_step * per_pipeline)

    return strategy.distribute_datasets_from_function(dataset_fn)


def eval_dataset(data, split, batch_size):
    """Evaluation batches (images, labels) of `split` ("val" or "test") of SplitData `data`,
    in a fixed order, the last batch partial (streamed splits too, whose arrays are None)."""
    examples = data.examples(split).dataset()
    if data.view != "gaussian_noise":
        views = _image_views(data)
        examples = examples.map(lambda x, y: (views.evaluate(x), y), num_parallel_calls=_AUTOTUNE)
    return examples.batch(batch_size).prefetch(_AUTOTUNE)


def _image_views(data, config=None):
    magnitude = config.augment_magnitude if config else 0.0
    cutout_size = config.cutout_size if config else 0
    return augment.ImageViews(data.view, data.input_shape, magnitude, cutout_size)


def _batches(data, config, labeled_batch, unlabeled_batch, num_pipelines, pipeline,
             skip_batches):
    """Zipped labeled and unlabeled batches of one input pipeline, the first `skip_batches`
    left out."""
    streams = []
    for split, batch in (("labeled", labeled_batch), ("unlabeled", unlabeled_batch)):
        examples = data.examples(split)
        keys = examples.read(num_pipelines, pipeline,
                             stream_seed(config.seed, f"{split}_order", pipeline))
        streams.append((examples, keys.repeat(), batch))
    if data.view == "gaussian_noise":
        labeled, unlabeled = _gaussian_batches(streams, config, pipeline, skip_batches)
    else:
        views = _image_views(data, config)

        def weak(k, image, label):
            return views.weak(image, _seed(config, "labeled_views", pipeline, k)), label

        def pair(k, image, label):
            return (*views.weak_and_strong(image, _seed(config, "unlabeled_views", pipeline, k)),
                    label)

        labeled, unlabeled = (_augmented(*stream, skip_batches, fn)
                              for stream, fn in zip(streams, (weak, pair)))
    return tf.data.Dataset.zip((labeled, unlabeled)).prefetch(_AUTOTUNE)


def _augmented(examples, keys, batch, skip_batches, fn):
    """Batches of fn(position, image, label), positions counted from the stream's start."""
    start = skip_batches * batch
    return (keys.skip(start).enumerate(start)
            .map(lambda k, key: fn(k, *examples.load(key)), num_parallel_calls=_AUTOTUNE)
            .batch(batch, drop_remainder=True))


def _seed(config, stream, pipeline, position):
    """A stateless seed of one example's views: the stream's seed x its position in it."""
    return tf.stack([tf.constant(stream_seed(config.seed, stream, pipeline), tf.int64),
                     tf.cast(position, tf.int64)])


def _gaussian_batches(streams, config, pipeline, skip_batches):
    """Two Moons: Gaussian input noise added per batch, seeded by (stream, batch index)."""
    weak, strong = (_gaussian_noise(config.weak_noise,
                                    stream_seed(config.seed, "weak_noise", pipeline)),
                    _gaussian_noise(config.strong_noise,
                                    stream_seed(config.seed, "strong_noise", pipeline)))
    (labeled, unlabeled) = (
        keys.map(examples.load).batch(batch, drop_remainder=True).skip(skip_batches)
        .enumerate(skip_batches) for examples, keys, batch in streams)
    labeled = labeled.map(lambda i, b: (weak(2 * i, b[0]), b[1]), num_parallel_calls=_AUTOTUNE)
    unlabeled = unlabeled.map(lambda i, b: (weak(2 * i + 1, b[0]), strong(i, b[0]), b[1]),
                              num_parallel_calls=_AUTOTUNE)
    return labeled, unlabeled


def _gaussian_noise(std, stream):
    """A view that adds N(0, std^2) noise: Two Moons' stand-in for image augmentation."""

    def view(index, points):
        seed = tf.stack([tf.constant(stream, tf.int64), index])
        return points + std * tf.random.stateless_normal(tf.shape(points), seed,
                                                             dtype=points.dtype)

    return view

