"""A CNN for 28x28 grayscale images (Fashion-MNIST, MNIST): about 4x the parameters of the digits
CNN (cnn.py) at about its cost per image, so a semi-supervised run still takes minutes on a CPU.

It pools early: one conv at full resolution, then the channels double as the side halves
(28 -> 14 -> 7), and global average pooling, so any image of at least 8x8 gives the same head;
conv-BN-ReLU layers and initializers as in the digits CNN and the WRN.
"""

import keras

from mpl_tf.models.layers import LayerSeeds, batch_norm_layer, classifier_head, conv
from mpl_tf.models.network import convolutional
from mpl_tf.models.precision import variable_dtype

# (filters, max-pool after the layer)
LAYERS = ((32, True), (64, True), (128, False))


def mnist_cnn(input_shape, num_classes, dropout_rate=0.0, bn_momentum=0.99, bn_epsilon=1e-3,
              fused_batch_norm=True, seed=0, dtype="float32", name="mnist_cnn", layers=LAYERS):
    """The 28x28 CNN returning logits."""
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


NETWORK = convolutional(mnist_cnn, min_image_size=8)
