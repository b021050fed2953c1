"""The library API as README.md shows it: its "Library API" example runs as written (here under a
MirroredStrategy of the two logical CPUs conftest.py creates) and on the default strategy (one
device, no distribution), through Keras' own fit() with a callback and the progress bar, and
its student beats chance on Two Moons."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import mpl_tf

ROOT = pathlib.Path(__file__).resolve().parent.parent
AS_WRITTEN = "tf.distribute.MirroredStrategy()"


def readme_example():
    """The first ```python block of README.md's "Library API" section."""
    section = (ROOT / "README.md").read_text().split("\n## Library API\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


# Run before the example, in its own process: two logical CPUs for MirroredStrategy (a
# MirroredStrategy made inside the test process would abort the shared one's collectives).
TWO_CPUS = """import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
"""
REPORT = """
print("REPLICAS", model.distribute_strategy.num_replicas_in_sync)
print("ACCURACY", accuracy)
"""


@pytest.mark.parametrize("strategy,replicas", [(AS_WRITTEN, 2),
                                               ("tf.distribute.get_strategy()", 1)])
def test_readme_example_trains_past_chance(strategy, replicas, tmp_path):
    code = readme_example()
    assert AS_WRITTEN in code
    script = tmp_path / "example.py"
    script.write_text(TWO_CPUS + code.replace(AS_WRITTEN, strategy) + REPORT)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = dict(line.split() for line in done.stdout.splitlines()
                  if line.startswith(("REPLICAS ", "ACCURACY ")))
    assert int(report["REPLICAS"]) == replicas
    assert float(report["ACCURACY"]) > 0.7  # two balanced moons: chance is 0.5
    assert "Epoch 3/3" in done.stdout and "feedback_h" in done.stdout  # the progress bar's logs
    log = (tmp_path / "mpl_log.csv").read_text().splitlines()
    assert len(log) == 4 and "teacher_loss" in log[0]  # header + one row per epoch


def test_import_does_not_import_tensorflow():
    """`import mpl_tf` stays light: the commands' --help and the version need no TensorFlow."""
    done = subprocess.run([sys.executable, "-c", "import sys, mpl_tf; print(mpl_tf.__version__, "
                           "'tensorflow' in sys.modules)"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == [mpl_tf.__version__, "False"]


def test_every_documented_name_resolves():
    for name in mpl_tf.__all__:
        assert getattr(mpl_tf, name) is not None, name
    assert set(mpl_tf.FEEDBACKS) == {"taylor", "dot", "exact", "none"}
    with pytest.raises(AttributeError):
        mpl_tf.no_such_name  # noqa: B018


def test_make_config_refuses_what_cannot_run():
    with pytest.raises(mpl_tf.ConfigError, match="--feedback=exact needs --label_type=soft"):
        mpl_tf.make_config(feedback="exact")


def test_sgd_takes_a_constant_or_a_schedule():
    constant = mpl_tf.sgd(0.5)
    assert float(constant.learning_rate()) == 0.5
    scheduled = mpl_tf.sgd(lambda step: 0.1 * tf.cast(step + 1, tf.float64))
    scheduled.iterations.assign(4)
    assert float(scheduled.learning_rate()) == pytest.approx(0.5)


def test_training_batches_have_the_config_sizes_and_views():
    config = mpl_tf.make_config(labeled_batch_size=4, unlabeled_batch_size=6)
    images = np.arange(20, dtype="float32").reshape(10, 2)
    hidden = np.arange(10) % 2
    batches = mpl_tf.training_batches((images[:5], hidden[:5]), (images, hidden), config,
                                      weak=lambda u: u + 100.0, strong=lambda u: -u)
    (x_l, y_l), (x_uw, x_us, y_u) = next(iter(batches))
    assert x_l.shape == (4, 2) and x_uw.shape == x_us.shape == (6, 2)
    assert y_l.dtype == y_u.dtype == tf.int32
    np.testing.assert_array_equal(x_uw.numpy() - 100.0, -x_us.numpy())  # both views of one x_u
    assert np.all(x_l.numpy() >= 100.0)  # labeled examples get the weak view
    unknown = mpl_tf.training_batches((images[:5], hidden[:5]), images, config)
    assert set(next(iter(unknown))[1][2].numpy()) == {-1}  # no hidden labels: unknown
