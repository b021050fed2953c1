"""Network registry: `build(name, ...)` makes the teacher and the student from one builder."""

from mpl_tf.config import ConfigError
from mpl_tf.models.mlp import mlp

MODELS = ("mlp",)


def build(config, input_shape, num_classes, seed, name, dtype="float32"):
    """The network `config.model` names, initialised from `seed`."""
    if config.model == "mlp":
        return mlp(input_shape, num_classes, hidden=config.mlp_hidden,
                   activation=config.mlp_activation, init_scale=config.mlp_init_scale,
                   seed=seed, dtype=dtype, name=name)
    raise ConfigError(f"--model={config.model} is not valid; valid values: {', '.join(MODELS)}")
