"""Numeric precision of training (`--precision`): the Keras dtype policy of the networks, and
the dynamic loss scale float16 gradients need.

float32: everything in float32. bfloat16 and mixed_float16: variables (and so gradients,
optimizer state, the EMA and checkpoints) stay float32 while convolutions, matmuls and
activations compute in 16 bits; input normalisation and the logits stay float32, so every loss,
pseudo label and feedback value is float32. bfloat16 has float32's range and needs no loss
scaling; float16 does (its smallest normal value is 6e-5), so each optimizer then owns a
`LossScale`. Exports are always float32, whatever the training precision.
"""

import keras
import tensorflow as tf

# --precision -> Keras dtype policy name.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "mixed_float16": "mixed_float16"}


class LossScale(tf.Module):
    """Dynamic loss scaling for our own optimizer, like Keras' LossScaleOptimizer (which has no
    floor; this scale never drops below 1).

    The loss is multiplied by `scale` before differentiation so small float16 gradients do not
    flush to zero, and the gradients are divided by it afterwards. A step whose gradients are
    not finite halves the scale (the non-finite guard skips that step); `growth_steps` finite
    steps in a row double it. Inert (scale 1, nothing stored) unless `dynamic`.
    """

    def __init__(self, dynamic=False, initial_scale=2.0 ** 15, growth_steps=2000,
                 name="loss_scale"):
        super().__init__(name=name)
        self.dynamic = dynamic
        self._growth_steps = growth_steps
        if dynamic:
            first = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.scale = tf.Variable(initial_scale, dtype=tf.float32, trainable=False,
                                     name="scale", aggregation=first)
            self.finite_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                            name="finite_steps", aggregation=first)

    def value(self):
        """The current scale (1.0 when inert)."""
        return self.scale.read_value() if self.dynamic else tf.constant(1.0)

    def gradients(self, tape, loss, variables):
        """`tape`'s gradients of `loss`, computed at the scaled loss and divided back.

        The backward pass is seeded with the scale instead of 1 (`output_gradients`), which is
        differentiating `scale * loss` without recording the product on the tape; an outer tape
        that records this call (the exact feedback) sees the same function of its variables.
        """
        if not self.dynamic:
            return tape.gradient(loss, variables)
        scale = tf.cast(self.scale, loss.dtype)
        grads = tape.gradient(loss, variables, output_gradients=scale)
        return [g / tf.cast(scale, g.dtype) for g in grads]

    def update(self, finite, counts=True):
        """After a step: halve on non-finite gradients (never below 1), double after
        `growth_steps` finite ones; a step that does not `count` (its gradients were spoilt
        upstream) changes nothing. Both flags must be the same on every replica."""
        if not self.dynamic:
            return
        count = tf.where(finite, self.finite_steps + 1, tf.zeros_like(self.finite_steps))
        grow = count >= self._growth_steps
        factor = tf.where(finite, tf.where(grow, 2.0, 1.0), 0.5)
        new_scale = tf.maximum(self.scale * factor, 1.0)
        new_count = tf.where(grow, tf.zeros_like(count), count)
        self.scale.assign(tf.where(counts, new_scale, self.scale))
        self.finite_steps.assign(tf.where(counts, new_count, self.finite_steps))


def variable_dtype(dtype):
    """The dtype a policy (or plain dtype) keeps its variables in: float32 for the mixed
    policies. Networks take inputs and return logits in it, so 16 bits stay inside them."""
    return keras.DTypePolicy(dtype).variable_dtype
