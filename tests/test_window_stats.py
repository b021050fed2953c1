"""The log-window statistics against numpy: weighted, and undefined (NaN) where they are."""

import math

import numpy as np

from mpl_tf.method.window_stats import WindowCorrelation, WindowMean, WindowStd


def fed(metric, xs, ys=None, weights=None):
    """The metric's result after the steps, NaN where it says it is undefined."""
    weights = weights if weights is not None else [1.0] * len(xs)
    for i, (x, w) in enumerate(zip(xs, weights)):
        args = (x,) if ys is None else (x, ys[i])
        metric.update_state(*args, sample_weight=w)
    if not bool(metric.defined()):
        assert float(metric.result()) == 0.0  # finite in the logs, like Keras' Mean
        return float("nan")
    return float(metric.result())


def test_statistics_match_numpy_on_the_weighted_steps():
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(1.0, 0.5, 40), rng.normal(size=40)
    ys = ys + 0.7 * xs
    keep = (rng.uniform(size=40) > 0.3).astype(float)
    assert fed(WindowMean("m"), xs, weights=keep) == np.float32(np.mean(xs[keep > 0]))
    np.testing.assert_allclose(fed(WindowStd("s"), xs, weights=keep), np.std(xs[keep > 0]),
                               rtol=1e-4)
    np.testing.assert_allclose(fed(WindowCorrelation("c"), xs, ys, keep),
                               np.corrcoef(xs[keep > 0], ys[keep > 0])[0, 1], rtol=1e-4)


def test_undefined_statistics_are_nan_and_a_reset_starts_a_new_window():
    assert math.isnan(fed(WindowMean("m"), [1.0, 2.0], weights=[0.0, 0.0]))
    assert math.isnan(fed(WindowCorrelation("c"), [1.0], [2.0]))
    assert math.isnan(fed(WindowCorrelation("c"), [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    std = WindowStd("s")
    assert fed(std, [0.0, 10.0]) == 5.0
    std.reset_state()
    assert fed(std, [3.0, 3.0]) == 0.0
