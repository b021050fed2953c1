"""The Keras base class of the trained models (`ClassifierTrainer`: one per method, registered
in mpl_tf/method/__init__.py), what a method declares, and what their train steps share: metric
trackers, the EMA of the trained network, and the non-finite guard.

Not the run (mpl_tf/run/orchestrate.py) nor the step loop (mpl_tf/run/loop.py).
"""

import dataclasses

import keras
import tensorflow as tf

from mpl_tf.durable.strategies import update_each
from mpl_tf.method.ema import ExponentialMovingAverage


def all_finite(tensors):
    """True when no element of any tensor is NaN or infinite."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def snapshot(variables):
    """This replica's current values of `variables`, to restore after a non-finite step."""
    return [tf.identity(v) for v in variables]


def restore_unless(ok, variables, saved):
    """Puts `saved` back into `variables` unless `ok` (the guard's verdict on the step)."""
    update_each(_keep_or_restore, variables, [(v,) for v in saved], (ok,))


def restore(variables, saved):
    """Puts `saved` back into `variables`."""
    update_each(_assign, variables, [(v,) for v in saved])


def _keep_or_restore(variable, saved, ok):
    variable.assign(tf.where(ok, variable, saved))


def _assign(variable, saved):
    variable.assign(saved)


@dataclasses.dataclass(frozen=True)
class TrainedNetwork:
    """A network a method trains: its Keras name; the seed it starts from, 2 * --seed +
    `seed_offset` (MPL's teacher 0, its student 1: each one-network method starts where its MPL
    counterpart does); and whose flags set its optimizer's schedule (mpl_tf/method/build.py):
    "teacher", "student", or "network" (--network_lr, --network_warmup_steps, which fall back on
    the teacher's flags)."""

    name: str
    seed_offset: int
    optimizer: str


class ClassifierTrainer(keras.Model):
    """A Keras model whose `call` is the network it evaluates, saves and serves.

    Subclasses declare what a run needs of them (`NETWORKS` and the rest below), give their
    networks (`networks`; the last is the `trained_network`) and list their log names in
    `LOG_NAMES` (averaged over each log window) and `WINDOW_LOGS` (name: a window statistic of
    mpl_tf/method/window_stats.py); `train_step` returns globally reduced values through `record`,
    which keeps one metric per name so `fit()` resets them each epoch and TensorBoard/CSV
    callbacks see them. Names in `OPTIONAL_LOGS` are left out of a window's logs where they are
    undefined (NaN). With an EMA attached, the average is what gets served.

    Non-finite guard: a step whose losses or gradients are not finite changes nothing (the
    subclass gates its updates) and is counted; `nonfinite_in_a_row` goes out with the logs so
    a callback can stop the run.
    """

    LOG_NAMES = ()
    WINDOW_LOGS = {}
    OPTIONAL_LOGS = ()

    # What a method declares; the run, the build, the model card and the checks read only this.
    # Its networks (`TrainedNetwork`s) in the order its constructor takes them (the last one
    # is served), followed by the config: `Method(*networks, config)`; `compile` takes their
    # optimizers in the same order.
    NETWORKS = ()
    # The log of the served network's labeled training loss (results.json's divergence check).
    LABELED_LOSS = None
    TITLE = ""  # short: the run's panel of the 2-D figure
    DESCRIPTION = ""  # the model card's "trained with ..."
    SERVED = "trained network"  # the model card's name of the network that is served
    # The flags of its own (beyond those every method takes): recorded in results.json, listed
    # on the model card; a group of flags is checked only for the methods that take it.
    FLAGS = ()
    # On 2-D data, a supervised control is trained beside the run and drawn next to it; False
    # for the supervised method, which is that control.
    TWO_D_CONTROL = True
    # Whether it learns from the unlabeled batches (their size is then bounded by the pool).
    UNLABELED = True

    @classmethod
    def differentiated_twice(cls, config):
        """Whether the step under `config` differentiates through a gradient (its networks are
        then built with Keras' batch norm: see `models.build`)."""
        del config
        return False

    @property
    def networks(self):
        """The trained networks, in the order of `NETWORKS`."""
        raise NotImplementedError

    def extra_results(self, train_logs, test_accuracy):
        """results.json entries of the method's own, from the run's mean `train_logs` and
        `test_accuracy(network)`."""
        del train_logs, test_accuracy
        return {}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOG_NAMES}
        self.trackers.update({name: statistic(name=name)
                              for name, statistic in self.WINDOW_LOGS.items()})
        self.ema_network = None
        self._ema = None
        self.nonfinite_in_a_row = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            name="nonfinite_in_a_row", aggregation="only_first_replica")
        self.nonfinite_steps = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            name="nonfinite_steps", aggregation="only_first_replica")
        # Steps run, applied or skipped by the guard: what batches, epochs and checkpoints count
        # (the optimizers' counters, which drive the schedules, stop on a skipped step).
        self.steps_run = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="steps_run",
            aggregation="only_first_replica")

    @property
    def trained_network(self):
        """The network whose weights are served (or averaged into the served EMA)."""
        return self.networks[-1]

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

    def update_ema(self, step, apply_if=True):
        """Call after the trained network's update, with the step it was updated at."""
        if self._ema is not None:
            self._ema.update(step, apply_if)

    def call(self, images, training=False):
        return self.serving_network(images, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def record(self, ok, values, weights=None):
        """Counts the step as finite or not (`ok`) and updates the trackers with its
        already-global values (a tuple for a statistic of several); returns the training logs.
        A rejected step is counted but left out of the averages: its values are not finite, or
        describe an update that was undone (a float16 loss-scale overflow is routine, and must
        not turn an epoch's logs to NaN)."""
        bad = tf.cast(tf.logical_not(ok), tf.int64)
        self.steps_run.assign_add(1)
        self.nonfinite_in_a_row.assign((self.nonfinite_in_a_row + bad) * bad)
        self.nonfinite_steps.assign_add(bad)
        applied = tf.cast(ok, tf.float32)
        weights = weights or {}
        for name, value in values.items():
            weight = applied * tf.cast(weights.get(name, 1.0), tf.float32)
            args = value if isinstance(value, tuple) else (value,)
            self.trackers[name].update_state(*(tf.where(ok, v, tf.zeros_like(v)) for v in args),
                                             sample_weight=weight)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        return {**logs, "nonfinite_in_a_row": self.nonfinite_in_a_row.value,
                "nonfinite_steps": self.nonfinite_steps.value}
