"""tf.distribute plumbing: the strategy a run trains under, and the two replica-context
operations every training step needs (summing over replicas, updating variables in place)."""

import tensorflow as tf


def strategy(name):
    """default: the current (no-op) strategy; mirrored: all local devices (GPUs, else CPUs)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"unknown strategy {name!r}")


def replica_sum(values):
    """Sums a tensor (or a list of them) over replicas; identity without a strategy."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


def tf_variable(variable):
    """The tf.Variable (possibly a MirroredVariable) behind a Keras variable."""
    return variable.value if hasattr(variable, "path") else variable


def update_each(update_fn, variables, per_variable_args, shared_args=()):
    """Calls `update_fn(device_copy, *per_variable_args[i], *shared_args)` for every device copy
    of every variable, from a replica context.

    Distributed variables cannot be assigned per replica; `merge_call` + `extended.update` is
    the route Keras' own optimizers take. Arguments must be identical on every replica.
    """

    def merged(strategy, per_variable_args, shared_args):
        for variable, args in zip(variables, per_variable_args):
            strategy.extended.update(tf_variable(variable), update_fn,
                                     args=(*args, *shared_args), group=False)

    tf.distribute.get_replica_context().merge_call(
        merged, args=(list(per_variable_args), tuple(shared_args)))
