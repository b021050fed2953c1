"""SGD with TF1 momentum semantics, weight decay and global-norm clipping; learning-rate schedules.

We keep our own optimizer instead of `keras.optimizers.SGD` for three reasons: the MPL step needs
the globally reduced student gradient anyway (for the `dot` feedback), Keras clips per replica
before its all-reduce, and Keras stores lr inside its velocity (`v <- m v - lr g`), which differs
from the released code's `a <- m a + g; w <- w - lr (g + m a)` whenever lr changes, e.g. at the end
of the student's zero-lr wait.
"""

import math

import tensorflow as tf

from mpl_tf.durable.strategies import tf_variable, update_each
from mpl_tf.models.precision import LossScale


def learning_rate(step, peak, schedule, total_steps, warmup_steps=0, wait_steps=0):
    """The released code's schedule: 0 while waiting, linear warmup, then constant or cosine to 0.

    With s = step - wait: lr = 0 for s < 0; peak * (s + 1) / warmup for s < warmup; afterwards
    peak (constant) or a cosine from peak to 0 at step == total_steps. Computed in float64 so
    float64 models get their lr exactly; each update casts it to its variable's dtype.
    """
    step = tf.cast(step, tf.float64)
    since_wait = step - float(wait_steps)
    warm = peak * (since_wait + 1.0) / float(max(warmup_steps, 1))
    if schedule == "cosine":
        decay_steps = float(max(total_steps - warmup_steps - wait_steps, 1))
        progress = tf.clip_by_value((since_wait - warmup_steps) / decay_steps, 0.0, 1.0)
        after = peak * 0.5 * (1.0 + tf.cos(math.pi * progress))
    else:
        after = tf.constant(peak, tf.float64)
    lr = tf.where(since_wait < float(warmup_steps), warm, after)
    return tf.where(since_wait < 0.0, tf.zeros_like(lr), lr)


class MomentumSGD(tf.Module):
    """`a <- m a + g; w <- w - lr (g + m a)` (Nesterov) or `w <- w - lr a`, with `g += wd w`.

    `apply` takes gradients already summed over replicas, so clipping sees the global norm; build
    it inside the strategy scope before training (slots must not be created inside a step).
    `loss_scale` is the optimizer's own dynamic loss scale under float16 (inert otherwise): take
    gradients with `loss_scale.gradients` and report their finiteness to `loss_scale.update`.
    """

    def __init__(self, lr_fn, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=0.0,
                 loss_scale=None, name="sgd"):
        super().__init__(name=name)
        self.loss_scale = loss_scale or LossScale()
        self._lr_fn = lr_fn
        self._momentum = momentum
        self._nesterov = nesterov
        self._weight_decay = weight_decay
        self._clip_norm = clip_norm
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations",
                                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.velocities = []
        self._decayed = []

    def build(self, variables, decayed=None):
        """Creates the slots; `decayed[i]` says whether weight decay applies to `variables[i]`
        (default: to all; networks say which with models.weight_decay_mask)."""
        self._decayed = [True] * len(variables) if decayed is None else list(decayed)
        if self._momentum and not self.velocities:
            strategy = tf.distribute.get_strategy()
            for v in variables:
                with strategy.extended.colocate_vars_with(tf_variable(v)):
                    self.velocities.append(tf.Variable(tf.zeros(v.shape, v.dtype),
                                                       trainable=False, name="velocity"))

    def learning_rate(self):
        """The lr the next `apply` will use."""
        return self._lr_fn(self.iterations)

    @property
    def gradient_coefficient(self):
        """How much of this step's gradient the update moves by, per unit of lr: 1 + m for
        Nesterov (`g + m (m a + g)`), else 1. The feedback estimators that differentiate
        through the student's step need it; weight decay and clipping they leave out."""
        return 1.0 + self._momentum if self._nesterov else 1.0

    def apply(self, grads, variables, apply_if=True):
        """Updates `variables` with globally reduced `grads`; returns the lr it used.

        With `apply_if` False (a scalar bool tensor: the non-finite guard's verdict) nothing
        changes, iterations included; the update is computed and discarded with tf.where, which
        keeps the step free of control flow around distributed updates.
        """
        lr = self.learning_rate()
        if self._weight_decay:
            grads = [g + self._weight_decay * v if d else g
                     for g, v, d in zip(grads, variables, self._decayed)]
        if self._clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, self._clip_norm)
        apply_if = tf.convert_to_tensor(apply_if)
        if self.velocities:
            update_each(self._momentum_update, variables,
                        [(g, tf_variable(v)) for g, v in zip(grads, self.velocities)],
                        (lr, apply_if))
        else:
            update_each(_sgd_update, variables, [(g,) for g in grads], (lr, apply_if))
        self.iterations.assign_add(tf.cast(apply_if, tf.int64))
        return lr

    def _momentum_update(self, var, grad, velocity, lr, apply_if):
        lr = tf.cast(lr, var.dtype)
        new_velocity = self._momentum * velocity + grad
        step = grad + self._momentum * new_velocity if self._nesterov else new_velocity
        velocity.assign(tf.where(apply_if, new_velocity, velocity))
        var.assign(tf.where(apply_if, var - lr * step, var))


def _sgd_update(var, grad, lr, apply_if):
    var.assign(tf.where(apply_if, var - tf.cast(lr, var.dtype) * grad, var))
