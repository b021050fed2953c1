"""A network's top-1 accuracy on a split of the run's data, while the run is in memory: the
number results.json, model selection and the Two Moons control report (`evaluate.py`, the
`evaluate` command, scores a finished run or export from its files).
"""

import tensorflow as tf

from mpl_tf.data import pipeline


def accuracy(network, data, split, batch_size):
    """Top-1 accuracy in [0, 1] of `network` (inference mode) on `split` ("val" or "test")."""
    correct = total = 0
    for images, labels in pipeline.eval_dataset(data, split, batch_size):
        predictions = tf.argmax(network(images, training=False), axis=-1, output_type=tf.int32)
        correct += int(tf.reduce_sum(tf.cast(predictions == tf.cast(labels, tf.int32), tf.int32)))
        total += int(labels.shape[0])
    return correct / total
