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
    assert int(model.teacher_optimizer.iterations) == 2


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

    from mpl_tf import distribute, train
    from mpl_tf.config import TrainingError
    from mpl_tf.data import sources

    config = tiny_config(num_labeled=12, labeled_batch_size=12, unlabeled_batch_size=16,
                         train_steps=100, log_every=100, max_nonfinite_steps=5)
    data = sources.two_moons(12, split_seed=0)
    data = dataclasses.replace(data, labeled_images=np.full_like(data.labeled_images, np.nan))
    with pytest.raises(TrainingError, match="stopped at step 0: 5 steps in a row"):
        train.fit(config, data, distribute.strategy("default"))
