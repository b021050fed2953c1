"""Statistics of a log window's steps for the training logs, beyond Keras' mean: a mean, a
standard deviation and a correlation that know when they are undefined (no step to average, a
constant series), so the logs can leave them out. Like Keras' mean, `result()` is then 0 (logs
stay finite); `defined()` tells the two apart.

Each keeps weighted sums only, so every result is a ratio of sums: it is the same whether the
sums are read from one replica or added over all of them (each replica records the same global
values). Moments are taken about zero in float32, which is exact enough for a diagnostic unless
a spread is below about 1e-3 of its mean.
"""

import keras
from keras import ops


class _WeightedSums(keras.metrics.Metric):
    """Weighted sums of products of the recorded values, named in `SUMS` ("x", "xy", ...)."""

    SUMS = ()

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.sums = {key: self.add_variable(shape=(), initializer="zeros", name=f"sum_{key}")
                     for key in ("1", *self.SUMS)}

    def update_state(self, *values, sample_weight=1.0):
        named = dict(zip("xy", (ops.cast(v, "float32") for v in values)))
        weight = ops.cast(sample_weight, "float32")
        for key, total in self.sums.items():
            term = weight
            for letter in key.replace("1", ""):
                term = term * named[letter]
            total.assign_add(term)

    def _mean(self, key):
        count = self.sums["1"].value
        return ops.where(count > 0, self.sums[key].value / ops.maximum(count, 1e-30), float("nan"))

    def _variance(self, letter):
        return ops.maximum(self._mean(letter + letter) - ops.square(self._mean(letter)), 0.0)

    def _value(self):
        """The statistic, NaN where undefined."""
        raise NotImplementedError

    def result(self):
        value = self._value()
        return ops.where(ops.isfinite(value), value, 0.0)

    def defined(self):
        return ops.isfinite(self._value())


class WindowMean(_WeightedSums):
    """The weighted mean of x; undefined when no step of the window had weight."""

    SUMS = ("x",)

    def _value(self):
        return self._mean("x")


class WindowStd(_WeightedSums):
    """The (population) standard deviation of x over the window's steps."""

    SUMS = ("x", "xx")

    def _value(self):
        return ops.sqrt(self._variance("x"))


class WindowCorrelation(_WeightedSums):
    """Pearson's correlation of x and y over the window's steps; undefined when either is
    constant or fewer than two steps had weight."""

    SUMS = ("x", "y", "xx", "yy", "xy")

    def _value(self):
        covariance = self._mean("xy") - self._mean("x") * self._mean("y")
        scale = ops.sqrt(self._variance("x") * self._variance("y"))
        return ops.where(scale > 0, covariance / ops.maximum(scale, 1e-30), float("nan"))
