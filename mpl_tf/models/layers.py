"""The pieces every convolutional network here shares: seeded initializers, a bias-free
convolution, a fused batch norm and the classifier head, in the released code's settings."""

import itertools
import math

import keras
import tensorflow as tf

from mpl_tf.models.precision import variable_dtype

LEAKY_SLOPE = 0.2


class LayerSeeds:
    """Gives every layer its own seed, so a network is a pure function of `seed`: a Keras
    initializer with a fixed seed draws the same values each call, so layers must not share."""

    PER_NETWORK = 1000  # networks seeded s and s+1 (teacher and student) never overlap

    def __init__(self, seed):
        self._first = seed * self.PER_NETWORK
        self._seeds = itertools.count(self._first)

    def next(self):
        seed = next(self._seeds)
        if seed - self._first >= self.PER_NETWORK:
            raise ValueError(f"a network needs more than {self.PER_NETWORK} initializer seeds")
        return seed

    def conv(self, kernel_size, filters):
        """N(0, sqrt(2 / fan_out)): the released code's conv init (He init on fan-out)."""
        fan_out = kernel_size * kernel_size * filters
        return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / fan_out), seed=self.next())

    def dense(self, num_classes):
        """U(+-1/sqrt(num_classes)): the released code's dense init (its range uses the
        kernel's last dimension, the number of outputs)."""
        limit = 1.0 / math.sqrt(num_classes)
        return keras.initializers.RandomUniform(-limit, limit, seed=self.next())


def conv(x, filters, kernel_size, stride, seeds, dtype, name):
    """A bias-free 'same' convolution: BN follows or precedes every one of them."""
    return keras.layers.Conv2D(filters, kernel_size, strides=stride, padding="same",
                               use_bias=False, kernel_initializer=seeds.conv(kernel_size, filters),
                               dtype=dtype, name=name)(x)


# Layer compute dtypes the fused kernel takes (its statistics, scale and offset are float32).
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="mpl_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras BatchNormalization computed by one fused kernel when training on NHWC float32,
    bfloat16 or float16.

    Keras 3 builds training-mode BN from about ten separate elementwise ops, a large share of a
    convolutional step's op time on CPU (the README's "Speed" section measures it and what the
    fused kernel saves). Values and gradients match Keras (the moving variance gets the same biased
    batch variance); every other case (inference, float64, a frozen layer) runs Keras' own code.
    Second derivatives do not match: TF's gradient of the fused gradient was off by up to 1% in
    float32 where Keras' BN was exact to 1e-6, so networks that are differentiated twice (the
    exact feedback) must use keras.layers.BatchNormalization.
    """

    def fusable(self, inputs, training, mask):
        """Whether this call is training-mode BN over the channels of an NHWC batch, with a
        learned scale and offset, in a dtype the fused kernel takes."""
        return bool(training and self.trainable and mask is None and len(inputs.shape) == 4
                    and self.axis in (-1, 3) and self.compute_dtype in _FUSED_DTYPES
                    and self.center and self.scale and not self.renorm
                    and not self.synchronized)

    def call(self, inputs, training=None, mask=None):
        if not self.fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        # 16-bit inputs stay 16-bit: the kernel accumulates its statistics in float32 and
        # takes float32 scale and offset (Keras' own BN would cast the whole tensor instead).
        x = tf.cast(inputs, self.compute_dtype)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased variance; Keras averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), variance.dtype)
        variance = variance * (count - 1.0) / count
        self.update_moving_statistics(mean, variance)
        return y

    def update_moving_statistics(self, mean, variance):
        """Moves the moving mean and (biased) variance towards a batch's, as Keras' BN does."""
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))


def batch_norm_layer(momentum, epsilon, fused, dtype):
    """`(x, name) -> BN(x)` with these settings (weight decay leaves its scale and offset out:
    see models.weight_decay_mask)."""
    layer = FusedBatchNormalization if fused else keras.layers.BatchNormalization
    return lambda x, name: layer(momentum=momentum, epsilon=epsilon, dtype=dtype, name=name)(x)


def classifier_head(x, num_classes, dropout_rate, seeds, dtype):
    """GAP -> dropout -> dense logits, the head every network here ends with."""
    x = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="head_pool")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, seed=seeds.next(), dtype=dtype,
                                 name="head_dropout")(x)
    return keras.layers.Dense(num_classes, kernel_initializer=seeds.dense(num_classes),
                              bias_initializer="zeros", dtype=variable_dtype(dtype),
                              name="logits")(x)
