"""What the three methods' Keras models share: metric trackers, replica sums, the eval step."""

import keras
import tensorflow as tf


def replica_sum(values):
    """Sums a tensor (or a list of them) over replicas; identity without a strategy."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


class ClassifierTrainer(keras.Model):
    """A Keras model whose `call` is the network it evaluates and serves (`serving_network`).

    Subclasses list their training log names in `LOG_NAMES`; `train_step` returns globally
    reduced values through `record`, which keeps one `keras.metrics.Mean` per name so `fit()`
    resets them each epoch and TensorBoard/CSV callbacks see them.
    """

    LOG_NAMES = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOG_NAMES}
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def serving_network(self):
        """The network this trainer evaluates, saves and exports."""
        raise NotImplementedError

    def call(self, images, training=False):
        return self.serving_network(images, training=training)

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy]

    def record(self, values, weights=None):
        """Updates the trackers with already-global values; returns the training logs."""
        weights = weights or {}
        for name, value in values.items():
            self.trackers[name].update_state(value, sample_weight=weights.get(name))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        images, labels = data[0], data[1]
        self.accuracy.update_state(labels, self(images, training=False))
        return {"accuracy": self.accuracy.result()}
