"""The Two Moons networks: a small MLP, as in the paper's toy experiment (2 x 8 sigmoid units,
weights and biases drawn from U(-0.1, 0.1))."""

import keras

from mpl_tf.models.layers import LayerSeeds
from mpl_tf.models.network import Network
from mpl_tf.models.precision import variable_dtype


def mlp(input_shape, num_classes, hidden=(8, 8), activation="sigmoid", init_scale=0.1,
        seed=0, dtype="float32", name="mlp"):
    """A functional MLP returning logits; every initializer gets its own seed (LayerSeeds)."""
    seeds = LayerSeeds(seed)

    def uniform():
        return keras.initializers.RandomUniform(-init_scale, init_scale, seed=seeds.next())

    inputs = keras.Input(shape=input_shape, dtype=variable_dtype(dtype))
    x = keras.layers.Flatten(dtype=dtype)(inputs)
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation=activation, kernel_initializer=uniform(),
                               bias_initializer=uniform(), dtype=dtype,
                               name=f"hidden_{i}")(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=uniform(),
                                bias_initializer=uniform(), dtype=variable_dtype(dtype),
                                name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def _from_config(config, input_shape, num_classes, seed, name, dtype, fused_batch_norm):
    del fused_batch_norm  # no batch norm
    return mlp(input_shape, num_classes, hidden=config.mlp_hidden,
               activation=config.mlp_activation, init_scale=config.mlp_init_scale, seed=seed,
               dtype=dtype, name=name)


NETWORK = Network(_from_config)
