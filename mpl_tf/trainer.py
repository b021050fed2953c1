"""What the three methods' Keras models share: metric trackers, the EMA of the trained
network, and the evaluation step."""

import keras

from mpl_tf.ema import ExponentialMovingAverage


class ClassifierTrainer(keras.Model):
    """A Keras model whose `call` is the network it evaluates, saves and serves.

    Subclasses name the network they train (`trained_network`) and list their log names in
    `LOG_NAMES`; `train_step` returns globally reduced values through `record`, which keeps one
    `keras.metrics.Mean` per name so `fit()` resets them each epoch and TensorBoard/CSV
    callbacks see them. With an EMA attached, the average is what gets served.
    """

    LOG_NAMES = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOG_NAMES}
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.ema_network = None
        self._ema = None

    @property
    def trained_network(self):
        raise NotImplementedError

    @property
    def serving_network(self):
        """The EMA of the trained network when there is one, else the trained network."""
        return self.ema_network if self.ema_network is not None else self.trained_network

    def attach_ema(self, average_network, decay, start_step=0):
        """Serves `average_network`, kept as the EMA of the trained network from now on."""
        self.ema_network = average_network
        self._ema = ExponentialMovingAverage(self.trained_network, average_network, decay,
                                             start_step)
        self._ema.reset()

    def update_ema(self, step):
        """Call right after the trained network's update, with the step it was updated at."""
        if self._ema is not None:
            self._ema.update(step)

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
