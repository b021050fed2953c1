"""Small builders shared by the tests: tiny configs, tiny float64 models, fixed batches."""

import numpy as np
import tensorflow as tf

from mpl_tf import cli
from mpl_tf.run import loop
from mpl_tf.method.build import build_model
from mpl_tf.config import Config

NUM_CLASSES = 3
INPUT_SHAPE = (2,)


def tiny_config(**overrides):
    """Plain SGD, no UDA, no smoothing, no baseline: the step in its simplest form."""
    base = dict(mlp_hidden=(5,), mlp_activation="tanh", mlp_init_scale=0.8, labeled_batch_size=4,
                unlabeled_batch_size=6, teacher_lr=0.5, student_lr=0.5, uda_weight=0.0,
                label_type="argmax", feedback="taylor", train_steps=10, log_every=10)
    base.update(overrides)
    return cli.validated(Config(**base))


def distributed_step_config(label_type="argmax", feedback="dot"):
    """A config exercising every replica-sensitive part of the step: UDA, momentum, weight
    decay, smoothing, the baseline and the EMA."""
    return tiny_config(label_type=label_type, feedback=feedback, uda_weight=1.0,
                       uda_threshold=0.3, momentum=0.9, nesterov=True, weight_decay=1e-3,
                       label_smoothing=0.1, feedback_baseline_decay=0.5, student_lr=0.2,
                       teacher_lr=0.2, ema_decay=0.9)


def build(config, dtype="float64", method=None):
    return build_model(config, INPUT_SHAPE, NUM_CLASSES, method=method, dtype=dtype)


def batch(config, seed=0, dtype="float64"):
    """((x_l, y_l), (x_u_weak, x_u_strong, y_u_hidden)) of the config's global sizes."""
    rng = np.random.default_rng(seed)
    b, u = config.labeled_batch_size, config.global_unlabeled_batch_size
    x_l = rng.normal(size=(b, 2))
    y_l = rng.integers(0, NUM_CLASSES, size=b).astype(np.int32)
    x_uw = rng.normal(size=(u, 2))
    x_us = x_uw + 0.3 * rng.normal(size=(u, 2))
    y_u = rng.integers(0, NUM_CLASSES, size=u).astype(np.int32)
    cast = lambda a: tf.constant(a, dtype)  # noqa: E731
    return ((cast(x_l), tf.constant(y_l)), (cast(x_uw), cast(x_us), tf.constant(y_u)))


def weights(network):
    return [v.numpy() for v in network.weights]


def one_step(config, data, dtype="float64"):
    """Builds a fresh model from config.seed, runs one train_step; returns (model, logs)."""
    model = build(config, dtype)
    logs = model.train_step(data)
    return model, {k: float(v) for k, v in logs.items()}


def run_fit(strategy, config, data, start_weights, steps, loss_scale=None,
            input_shape=INPUT_SHAPE):
    """`steps` steps of the training driver on one repeated batch under `strategy`, from the
    given (teacher, student) weights (and both optimizers' `loss_scale`, under float16),
    networks in config.precision; returns the model."""
    with strategy.scope():
        model = build_model(config, input_shape, NUM_CLASSES)
        model.teacher.set_weights(start_weights[0])
        model.student.set_weights(start_weights[1])
        for optimizer in (model.teacher_optimizer, model.student_optimizer):
            if loss_scale is not None:
                optimizer.loss_scale.scale.assign(loss_scale)
    dataset = tf.data.Dataset.from_tensors(data).repeat()
    loop.fit(model, strategy, dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def one_device_and_two_replicas(config, data, steps=3):
    """The start (teacher, student) weights, and the model after `steps` steps of the driver on
    one device and on two replicas from them."""
    reference = build_model(config, INPUT_SHAPE, NUM_CLASSES)
    start = (reference.teacher.get_weights(), reference.student.get_weights())
    one = run_fit(tf.distribute.get_strategy(), config, data, start, steps=steps)
    two = run_fit(two_cpu_mirrored_strategy(), config, data, start, steps=steps)
    return start, one, two


def assert_same_student_statistics(model, reference):
    """The students' batch-norm moving statistics agree (and there are some)."""
    moving = [v for v in model.student.non_trainable_weights if "moving" in v.path]
    expected = [v for v in reference.student.non_trainable_weights if "moving" in v.path]
    assert moving
    for got, want in zip(moving, expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)


_MIRRORED = []


def two_cpu_mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs, shared by every test in the process:
    separate instances reuse collective instance keys and abort each other's all-reduces."""
    if not _MIRRORED:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        assert len(devices) == 2, "tests/conftest.py should have made two logical CPUs"
        _MIRRORED.append(tf.distribute.MirroredStrategy(devices))
    return _MIRRORED[0]
