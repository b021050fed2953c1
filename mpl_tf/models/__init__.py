"""Network registry: `build(...)` makes the teacher and the student from one builder.

Networks take raw inputs (images as float pixels in [0, 255]) and normalise them in their first
layer, so training, evaluation and every exported signature share one preprocessing.
"""

import keras

from mpl_tf.config import ConfigError
from mpl_tf.models.mlp import mlp

MODELS = ("mlp",)


def build(config, input_shape, num_classes, seed, name, dtype="float32", pixel_mean=None,
          pixel_std=None):
    """The network `config.model` names, initialised from `seed`, returning logits.

    With `pixel_mean`/`pixel_std` (per channel, on the 0-255 scale) the inputs are normalised
    inside the network.
    """
    body_name = name if pixel_mean is None else f"{name}_body"
    if config.model == "mlp":
        body = mlp(input_shape, num_classes, hidden=config.mlp_hidden,
                   activation=config.mlp_activation, init_scale=config.mlp_init_scale,
                   seed=seed, dtype=dtype, name=body_name)
    else:
        raise ConfigError(f"--model={config.model} is not valid; valid values: "
                          f"{', '.join(MODELS)}")
    if pixel_mean is None:
        return body
    inputs = keras.Input(shape=input_shape, dtype=dtype)
    normalized = keras.layers.Normalization(
        mean=list(pixel_mean), variance=[s * s for s in pixel_std], dtype=dtype,
        name="normalize")(inputs)
    return keras.Model(inputs, body(normalized), name=name)
