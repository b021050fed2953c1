"""WRN-28-k as the released MPL code builds it.

Differences from the original Wide ResNet that the released code has and we keep: the stem has
16k channels (not 16), so the first stage needs no projection; activations are LeakyReLU(0.2);
convolutions have no bias; BN uses decay 0.99 and epsilon 1e-3 (from the config).
"""

import keras

from mpl_tf.models.layers import LEAKY_SLOPE, LayerSeeds, batch_norm_layer, classifier_head, conv
from mpl_tf.models.network import convolutional
from mpl_tf.models.precision import variable_dtype

BLOCKS_PER_STAGE = 4


def wide_resnet(input_shape, num_classes, width=2, dropout_rate=0.0, bn_momentum=0.99,
                bn_epsilon=1e-3, fused_batch_norm=True, seed=0, dtype="float32",
                name="wrn-28-2"):
    """WRN-28-`width` returning logits: 3 stages of 4 pre-activation blocks (strides 1/2/2)."""
    seeds = LayerSeeds(seed)
    batch_norm = batch_norm_layer(bn_momentum, bn_epsilon, fused_batch_norm, dtype)

    def bn_act(x, name):
        x = batch_norm(x, name)
        return keras.layers.LeakyReLU(LEAKY_SLOPE, dtype=dtype, name=f"{name}_act")(x)

    def block(x, filters, stride, name):
        """BN-act-conv-BN-act-conv; a changed shape takes a 1x1 conv of the shared
        pre-activation as its shortcut, an unchanged one the raw input."""
        preactivation = bn_act(x, f"{name}_bn_1")
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = conv(preactivation, filters, 1, stride, seeds, dtype, f"{name}_shortcut")
        y = conv(preactivation, filters, 3, stride, seeds, dtype, f"{name}_conv_1")
        y = conv(bn_act(y, f"{name}_bn_2"), filters, 3, 1, seeds, dtype, f"{name}_conv_2")
        return keras.layers.Add(dtype=dtype, name=f"{name}_add")([y, shortcut])

    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    x = conv(inputs, 16 * width, 3, 1, seeds, dtype, "stem_conv")
    index = 1
    for filters, stride in ((16 * width, 1), (32 * width, 2), (64 * width, 2)):
        for i in range(BLOCKS_PER_STAGE):
            x = block(x, filters, stride if i == 0 else 1, f"block_{index}")
            index += 1
    x = bn_act(x, "head_bn")
    logits = classifier_head(x, num_classes, dropout_rate, seeds, dtype)
    return keras.Model(inputs, logits, name=name)


def network(width):
    """The registry entry of WRN-28-`width` (it halves its input twice)."""
    return convolutional(wide_resnet, min_image_size=8, width=width)
