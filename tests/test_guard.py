"""The non-finite guard: a step with a NaN anywhere changes nothing and is counted."""

import numpy as np
import pytest
import tensorflow as tf

from mpl_testing import batch, build, tiny_config


def _poison(data, where):
    (x_l, y_l), (x_uw, x_us, y_u) = data
    nan = lambda x: tf.tensor_scatter_nd_update(x, [[0, 0]], [np.nan])  # noqa: E731
    if where == "labeled":
        x_l = nan(x_l)
    else:
        x_us = nan(x_us)
    return (x_l, y_l), (x_uw, x_us, y_u)


def _state(model):
    parts = [*model.teacher.weights, *model.student.weights, *model.ema_network.weights,
             model.feedback_baseline, model.teacher_optimizer.iterations,
             model.student_optimizer.iterations, *model.student_optimizer.velocities,
             *model.teacher_optimizer.velocities]
    return [np.array(v.numpy()) for v in parts]


@pytest.mark.parametrize("where", ["labeled", "unlabeled_strong"])
def test_a_nonfinite_step_is_rolled_back_and_counted(where):
    config = tiny_config(ema_decay=0.9, feedback_baseline_decay=0.9, momentum=0.9)
    model = build(config)
    model.train_step(batch(config, seed=1))  # one good step, so velocities are not zero
    before = _state(model)
    for expected_in_a_row in (1, 2):
        logs = model.train_step(_poison(batch(config, seed=2), where))
        assert int(logs["nonfinite_in_a_row"]) == expected_in_a_row
    for a, b in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b)
    logs = model.train_step(batch(config, seed=3))
    assert int(logs["nonfinite_in_a_row"]) == 0 and int(logs["nonfinite_steps"]) == 2
    assert int(model.teacher_optimizer.iterations) == 2  # the schedules skip rejected steps
    assert int(model.steps_run) == 4  # batches and checkpoints do not


def test_the_supervised_baseline_skips_a_nonfinite_step():
    config = tiny_config()
    model = build(config, method="supervised")
    before = [v.numpy().copy() for v in model.network.weights]
    logs = model.train_step(_poison(batch(config), "labeled"))
    assert int(logs["nonfinite_in_a_row"]) == 1
    for a, v in zip(before, model.network.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert int(model.network_optimizer.iterations) == 0


def test_fit_stops_after_too_many_nonfinite_steps_in_a_row():
    import dataclasses

    from mpl_tf.durable import strategies

    from mpl_tf.run import training
    from mpl_tf.errors import TrainingError
    from mpl_tf.data import two_moons

    config = tiny_config(num_labeled=12, labeled_batch_size=12, unlabeled_batch_size=16,
                         train_steps=100, log_every=100, max_nonfinite_steps=5)
    data = two_moons.make(12, split_seed=0)
    data = dataclasses.replace(data, labeled_images=np.full_like(data.labeled_images, np.nan))
    with pytest.raises(TrainingError, match="stopped at step 5: 5 steps in a row"):
        training.train(config, data, strategies.strategy("default"))


def test_a_rejected_step_restores_batch_norm_statistics_of_both_networks():
    from mpl_tf.method.build import build_model

    config = tiny_config(model="cnn", labeled_batch_size=2, unlabeled_batch_size=4)
    model = build_model(config, (8, 8, 1), 3)
    rng = np.random.default_rng(0)
    images = lambda n: tf.constant(rng.uniform(0, 255, (n, 8, 8, 1)), tf.float32)  # noqa: E731
    poisoned = tf.tensor_scatter_nd_update(images(2), [[0, 0, 0, 0]], [np.inf])
    data = ((poisoned, tf.constant([0, 1], tf.int32)),
            (images(4), images(4), tf.constant([-1] * 4, tf.int32)))
    before = [v.numpy().copy() for v in model.teacher.non_trainable_weights
              + model.student.non_trainable_weights]
    logs = model.train_step(data)
    assert int(logs["nonfinite_in_a_row"]) == 1
    after = model.teacher.non_trainable_weights + model.student.non_trainable_weights
    for a, v in zip(before, after):
        np.testing.assert_array_equal(a, v.numpy())
