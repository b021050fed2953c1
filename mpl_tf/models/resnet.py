"""ResNet-50 as the released MPL code builds it for ImageNet (its modeling.py, `ResNet50`): the
standard bottleneck network with ReLU, the stride on the 3x3 convolution ("v1.5"), bias-free
convolutions, BN after the projection shortcut, and a GAP -> dropout -> dense head."""

import keras

from mpl_tf.models.layers import LayerSeeds, batch_norm_layer, classifier_head, conv
from mpl_tf.models.network import convolutional
from mpl_tf.models.precision import variable_dtype

# (bottleneck output channels, blocks, stride of the stage's first block)
STAGES = ((256, 3, 1), (512, 4, 2), (1024, 6, 2), (2048, 3, 2))
BOTTLENECK_RATIO = 4


def resnet50(input_shape, num_classes, dropout_rate=0.0, bn_momentum=0.99, bn_epsilon=1e-3,
             fused_batch_norm=True, seed=0, dtype="float32", name="resnet-50"):
    """ResNet-50 returning logits; downsamples 32x (a 7x7/2 stem, a 3x3/2 max pool, 3 stages
    with stride 2)."""
    seeds = LayerSeeds(seed)
    batch_norm = batch_norm_layer(bn_momentum, bn_epsilon, fused_batch_norm, dtype)

    def conv_bn(x, filters, kernel_size, stride, name, relu=True):
        x = conv(x, filters, kernel_size, stride, seeds, dtype, f"{name}_conv")
        x = batch_norm(x, f"{name}_bn")
        if relu:
            x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)
        return x

    def bottleneck(x, filters, stride, name):
        """1x1 reduce -> 3x3 (strided) -> 1x1 expand, added to the (projected) input."""
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = conv_bn(x, filters, 1, stride, f"{name}_shortcut", relu=False)
        y = conv_bn(x, filters // BOTTLENECK_RATIO, 1, 1, f"{name}_reduce")
        y = conv_bn(y, filters // BOTTLENECK_RATIO, 3, stride, f"{name}_3x3")
        y = conv_bn(y, filters, 1, 1, f"{name}_expand", relu=False)
        y = keras.layers.Add(dtype=dtype, name=f"{name}_add")([y, shortcut])
        return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(y)

    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    x = conv_bn(inputs, 64, 7, 2, "stem")
    x = keras.layers.MaxPooling2D(3, 2, padding="same", dtype=dtype, name="stem_pool")(x)
    index = 1
    for filters, blocks, stride in STAGES:
        for i in range(blocks):
            x = bottleneck(x, filters, stride if i == 0 else 1, f"block_{index}")
            index += 1
    logits = classifier_head(x, num_classes, dropout_rate, seeds, dtype)
    return keras.Model(inputs, logits, name=name)


# It halves its input five times.
NETWORK = convolutional(resnet50, min_image_size=32)
