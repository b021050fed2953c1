"""Exponential moving average of a network's weights, the model that gets evaluated and served.

As released (common_utils.py, `setup_ema`): the decay warms up as min(decay, (t+1)/(t+10)) so
early averages are not stuck near the random start, and every weight is averaged, batch-norm
moving statistics included. We start the average from a copy of the network (the released code
starts from zeros, which the warm-up forgets within a few steps).
"""

import tensorflow as tf

from mpl_tf.durable.strategies import tf_variable, update_each


def decay_at(step, decay, start_step=0):
    """The averaging rate at `step`: 0 before `start_step`, then min(decay, (t+1)/(t+10))."""
    t = tf.cast(step, tf.float64) - float(start_step)
    rate = tf.minimum(tf.constant(decay, tf.float64), (t + 1.0) / (t + 10.0))
    return tf.where(t < 0.0, tf.zeros_like(rate), rate)


class ExponentialMovingAverage:
    """Keeps `average` (a network of the same architecture) as the EMA of `network`."""

    def __init__(self, network, average, decay, start_step=0):
        self.network = network
        self.average = average
        self.decay = decay
        self.start_step = start_step
        self.average.trainable = False

    def reset(self):
        """Copies the network into the average (at the start of training)."""
        for average, value in zip(self.average.weights, self.network.weights):
            average.assign(value)

    def update(self, step, apply_if=True):
        """`average <- average - (1 - rate) (average - value)`, for every weight; returns rate.

        Runs in a replica context; each device averages its own copy of the network (weights
        are identical across replicas, batch-norm statistics are per replica). With
        `apply_if` False the average stays as it is (rate 1).
        """
        rate = decay_at(step, self.decay, self.start_step)
        rate = tf.where(apply_if, rate, tf.ones_like(rate))
        update_each(_move_toward, self.average.weights,
                    [(tf_variable(v),) for v in self.network.weights], (rate,))
        return rate


def _move_toward(average, value, rate):
    average.assign_sub((1.0 - tf.cast(rate, average.dtype)) * (average - value))
