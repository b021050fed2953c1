"""Network registry: `build(...)` makes the teacher and the student from one builder.

Networks take raw inputs (images as float pixels in [0, 255]) and normalise them in their first
layer, so training, evaluation and every exported signature share one preprocessing.
"""

import keras

from mpl_tf.config import ConfigError
from mpl_tf.models.cnn import cnn
from mpl_tf.models.mlp import mlp
from mpl_tf.models.resnet import resnet50
from mpl_tf.models.wide_resnet import wide_resnet
from mpl_tf.precision import variable_dtype


# Smallest image side each convolutional network accepts: the WRN halves its input twice and
# ResNet-50 five times, so smaller images would shrink to nothing before the head.
MIN_IMAGE_SIZE = {"cnn": 8, "wrn-28-2": 8, "wrn-28-8": 8, "resnet-50": 32}
# Every network `--model` can name (config validation checks against this).
MODELS = ("mlp", *MIN_IMAGE_SIZE)


def build(config, input_shape, num_classes, seed, name, dtype="float32", pixel_mean=None,
          pixel_std=None):
    """The network `config.model` names, initialised from `seed`, returning logits.

    `dtype` is a dtype or a Keras dtype policy (`mixed_bfloat16`, `mixed_float16`: see
    mpl_tf/precision.py); inputs and logits are in its variable dtype. With
    `pixel_mean`/`pixel_std` (per channel, on the 0-255 scale) the inputs are normalised inside
    the network.
    """
    body_name = name if pixel_mean is None else f"{name}_body"
    body = _body(config, tuple(input_shape), num_classes, seed, body_name, dtype)
    if pixel_mean is None:
        return body
    # Normalised in float32 (the policy's variable dtype) even when the body computes in 16
    # bits: 0-255 pixels in bfloat16 would lose their fractional part.
    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    normalized = keras.layers.Normalization(
        mean=list(pixel_mean), variance=[s * s for s in pixel_std], dtype=variable_dtype(dtype),
        name="normalize")(inputs)
    return keras.Model(inputs, body(normalized), name=name)


def _body(config, input_shape, num_classes, seed, name, dtype):
    """The bare network (no normalisation), after checking it can take `input_shape`."""
    check_name(config.model)
    if config.model == "mlp":
        return mlp(input_shape, num_classes, hidden=config.mlp_hidden,
                   activation=config.mlp_activation, init_scale=config.mlp_init_scale,
                   seed=seed, dtype=dtype, name=name)
    check_input_shape(config.model, input_shape)
    # The exact feedback differentiates through the student's gradient, and the fused BN
    # kernel's second derivative is inexact (see FusedBatchNormalization).
    common = dict(dropout_rate=config.dropout_rate, bn_momentum=config.batch_norm_decay,
                  bn_epsilon=config.batch_norm_epsilon, fused_batch_norm=config.feedback != "exact",
                  seed=seed, dtype=dtype, name=name)
    if config.model == "cnn":
        return cnn(input_shape, num_classes, **common)
    if config.model == "resnet-50":
        return resnet50(input_shape, num_classes, **common)
    return wide_resnet(input_shape, num_classes, width=int(config.model.split("-")[-1]),
                       **common)


def check_name(model):
    """Raises ConfigError unless `model` names a registered network."""
    if model not in MODELS:
        raise ConfigError(f"--model={model} is not valid; valid values: {', '.join(MODELS)}")


def leaf_layers(network):
    """Every layer of `network`, looking inside nested models (the normalisation wrapper)."""
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def check_input_shape(model, input_shape):
    """Raises ConfigError unless a convolutional `model` gets (height, width, channels) images
    big enough for it (the MLP flattens anything)."""
    if model == "mlp":
        return
    size = MIN_IMAGE_SIZE[model]
    if len(input_shape) != 3 or min(input_shape[:2]) < size:
        raise ConfigError(f"--model={model} needs images (height, width, channels) of at least "
                          f"{size}x{size}; got input shape {input_shape}")
