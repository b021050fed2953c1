"""Network registry: `build(...)` makes the teacher and the student from one builder.

A network is one module with a builder and its `Network` entry (mpl_tf/models/network.py), plus
one line in `NETWORKS`. Networks take raw inputs (images as float pixels in [0, 255]) and
normalise them in their first layer, so training, evaluation and every exported signature share
one preprocessing. Which variables weight decay applies to follows from the layers' types
(`weight_decay_mask`), not from their names.
"""

import keras

from mpl_tf.errors import ConfigError
from mpl_tf.models import cnn, mlp, mnist_cnn, resnet, wide_resnet
from mpl_tf.models.precision import variable_dtype

NETWORKS = {
    "mlp": mlp.NETWORK,
    "cnn": cnn.NETWORK,
    "mnist-cnn": mnist_cnn.NETWORK,
    "wrn-28-2": wide_resnet.network(width=2),
    "wrn-28-8": wide_resnet.network(width=8),
    "resnet-50": resnet.NETWORK,
}

# Layers whose scale and offset weight decay leaves alone (as released: "every non-BN variable").
NORMALIZATION_LAYERS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                        keras.layers.GroupNormalization, keras.layers.Normalization)


def build(config, input_shape, num_classes, seed, name, dtype="float32", pixel_mean=None,
          pixel_std=None, differentiated_twice=False):
    """The network `config.model` names, initialised from `seed`, returning logits.

    `dtype` is a dtype or a Keras dtype policy (`mixed_bfloat16`, `mixed_float16`: see
    mpl_tf/models/precision.py); inputs and logits are in its variable dtype. With
    `pixel_mean`/`pixel_std` (per channel, on the 0-255 scale) the inputs are normalised inside
    the network. `differentiated_twice` (the exact feedback differentiates through the
    student's gradient) builds Keras' batch norm instead of the fused kernel, whose second
    derivative is inexact (see models.layers.FusedBatchNormalization).
    """
    body_name = name if pixel_mean is None else f"{name}_body"
    check_input_shape(config.model, input_shape)
    body = NETWORKS[config.model].build(config, tuple(input_shape), num_classes, seed=seed,
                                        name=body_name, dtype=dtype,
                                        fused_batch_norm=not differentiated_twice)
    if pixel_mean is None:
        return body
    # Normalised in float32 (the policy's variable dtype) even when the body computes in 16
    # bits: 0-255 pixels in bfloat16 would lose their fractional part.
    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    normalized = keras.layers.Normalization(
        mean=list(pixel_mean), variance=[s * s for s in pixel_std], dtype=variable_dtype(dtype),
        name="normalize")(inputs)
    return keras.Model(inputs, body(normalized), name=name)


def leaf_layers(network):
    """Every layer of `network`, looking inside nested models (the normalisation wrapper)."""
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def weight_decay_mask(network):
    """For each of `network.trainable_variables`: whether weight decay applies, which is to
    every trainable variable except those of normalization layers."""
    exempt = {id(v) for layer in leaf_layers(network) if isinstance(layer, NORMALIZATION_LAYERS)
              for v in layer.trainable_weights}
    return [id(v) not in exempt for v in network.trainable_variables]


def check_name(model):
    """Raises ConfigError unless `model` names a registered network."""
    if model not in NETWORKS:
        raise ConfigError(f"--model={model} is not valid; valid values: {', '.join(NETWORKS)}")


def check_input_shape(model, input_shape):
    """Raises ConfigError unless `model` is registered and, if it is convolutional, gets
    (height, width, channels) images big enough for it (the MLP flattens anything)."""
    check_name(model)
    size = NETWORKS[model].min_image_size
    if not size:
        return
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < size:
        raise ConfigError(f"--model={model} needs images (height, width, channels) of at least "
                          f"{size}x{size}; got input shape {input_shape}")
