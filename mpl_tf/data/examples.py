"""`Examples`: one split as something tf.data can read, whether it lives in numpy arrays or in
TFDS files, so the pipeline has one way to read labeled, unlabeled, validation and test data.

Reading is split in two: cheap *keys* (an array index, or a still-encoded TFDS record) that are
sharded, shuffled and skipped, and `load(key)`, which makes the (image, label) pair. A resumed
run can then skip a million examples without decoding one.
"""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Examples:
    """`size` examples. `read(num_shards, shard, seed)` is a finite dataset of keys of shard
    `shard` of `num_shards`, in a fixed order when `seed` is None and shuffled by `seed`
    otherwise; `load(key)` returns (image, int32 label). A key is one tensor or a dict (never
    a tuple, which Dataset.map would unpack). `image_shape` has None sides when
    images vary in size (ImageNet)."""

    size: int
    image_shape: tuple
    read: Callable[[int, int, object], tf.data.Dataset]
    load: Callable

    def dataset(self, num_shards=1, shard=0, seed=None):
        """One pass of loaded (image, label) examples."""
        return self.read(num_shards, shard, seed).map(self.load,
                                                      num_parallel_calls=tf.data.AUTOTUNE)

    def concatenate(self, other):
        """Both splits as one (images become float32; both must have one fixed image shape).

        A shuffled read interleaves the two at random in proportion to their sizes, so a
        shuffle buffer is never filled from one part alone. Keys are dicts {"part": 0 or 1,
        "keys": (key of self, key of other)}, the unused key a zero placeholder.
        """
        parts = (self, other)

        def read(num_shards, shard, seed):
            blanks = [_zeros(p.read(1, 0, None).element_spec) for p in parts]
            tagged = [parts[i].read(num_shards, shard, seed).map(
                lambda key, i=i: {"part": i, "keys": (key, blanks[1]) if i == 0 else (
                    blanks[0], key)}) for i in (0, 1)]
            if seed is None:
                return tagged[0].concatenate(tagged[1])
            weights = [p.size / (self.size + other.size) for p in parts]
            return tf.data.Dataset.sample_from_datasets(tagged, weights, seed=seed,
                                                        stop_on_empty_dataset=False)

        def load(key):
            image, label = tf.cond(tf.equal(key["part"], 0),
                                   lambda: _float(*self.load(key["keys"][0])),
                                   lambda: _float(*other.load(key["keys"][1])))
            return tf.ensure_shape(image, self.image_shape), label

        return Examples(self.size + other.size, self.image_shape, read, load)


def from_arrays(images, labels):
    """Examples held in memory (uint8 images stay uint8), keyed by index."""
    # Eager tensors are captured by reference; a numpy array would be embedded in every graph.
    images, labels = tf.constant(images), tf.constant(np.asarray(labels, np.int32))
    return indexed(len(labels), tuple(images.shape[1:]),
                   lambda index: (tf.gather(images, index), tf.gather(labels, index)))


def indexed(size, image_shape, load):
    """Examples keyed by their index 0..size-1, `load(index)` making the pair (arrays, or the
    files of a folder). A shuffled read permutes indices, so no shuffle buffer holds images;
    with seed s the order is the one `Dataset.shuffle(n, seed=s)` gives the examples
    themselves."""

    def read(num_shards, shard, seed):
        indices = tf.data.Dataset.range(size)
        if num_shards > 1 and size >= num_shards:
            indices = indices.shard(num_shards, shard)
        if seed is not None:
            indices = indices.shuffle(size, seed=seed)
        return indices

    return Examples(size, tuple(image_shape), read, load)


def _zeros(spec):
    return tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), spec)


def _float(image, label):
    return tf.cast(image, tf.float32), label
