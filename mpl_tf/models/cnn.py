"""A small CNN (about 24k parameters) for the scikit-learn digits (8x8, or upsampled to 16x16):
big enough to fit them, small enough that a full MPL run takes minutes on a CPU.

Three conv-BN-ReLU layers with one 2x2 max pool, then global average pooling, so any image of
at least 8x8 and any channel count give the same head; initializers as in the WRN.
"""

import keras

from mpl_tf.models.layers import LayerSeeds, batch_norm_layer, classifier_head, conv
from mpl_tf.models.network import convolutional
from mpl_tf.models.precision import variable_dtype

# (filters, max-pool after the layer)
LAYERS = ((32, False), (32, True), (48, False))


def cnn(input_shape, num_classes, dropout_rate=0.0, bn_momentum=0.99, bn_epsilon=1e-3,
        fused_batch_norm=True, seed=0, dtype="float32", name="cnn", layers=LAYERS):
    """A CNN of 3x3 convolutions `layers` ((filters, max-pool after it), ...; by default the
    digits CNN's) and the classifier head, returning logits."""
    seeds = LayerSeeds(seed)
    batch_norm = batch_norm_layer(bn_momentum, bn_epsilon, fused_batch_norm, dtype)
    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    x = inputs
    for i, (filters, pool) in enumerate(layers, start=1):
        x = conv(x, filters, 3, 1, seeds, dtype, f"conv_{i}")
        x = batch_norm(x, f"conv_{i}_bn")
        x = keras.layers.ReLU(dtype=dtype, name=f"conv_{i}_relu")(x)
        if pool:
            x = keras.layers.MaxPooling2D(2, dtype=dtype, name=f"conv_{i}_pool")(x)
    logits = classifier_head(x, num_classes, dropout_rate, seeds, dtype)
    return keras.Model(inputs, logits, name=name)


# The smallest image it was built for: digits at 8x8.
NETWORK = convolutional(cnn, min_image_size=8)
