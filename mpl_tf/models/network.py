"""What the network registry holds for each name: how to build the network from a config, and
the smallest image it can take."""

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Network:
    """`build(config, input_shape, num_classes, seed=, name=, dtype=, fused_batch_norm=)`
    returns the bare network (logits, no input normalisation). `min_image_size` is the smallest
    image side it accepts (0: any input shape, which it flattens)."""
    build: Callable
    min_image_size: int = 0


def convolutional(function, min_image_size, **fixed):
    """A registry entry for a convolutional builder taking the config's dropout and batch-norm
    settings (and `fixed` arguments, e.g. a width)."""

    def build(config, input_shape, num_classes, seed, name, dtype, fused_batch_norm):
        return function(input_shape, num_classes, dropout_rate=config.dropout_rate,
                        bn_momentum=config.batch_norm_decay, bn_epsilon=config.batch_norm_epsilon,
                        fused_batch_norm=fused_batch_norm, seed=seed, dtype=dtype, name=name,
                        **fixed)

    return Network(build, min_image_size)
