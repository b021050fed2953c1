"""The teacher's feedback signal: how much the student's step on the pseudo labels changed the
student's loss on labeled data, and the term that turns it into a teacher gradient.

Three estimators (MPL_ALGORITHM.md sections 0 and 1):
- taylor: h = CE_l(theta) - CE_l(theta'), the first-order difference the released code logs;
- dot:    h = lr_S * <grad CE_l(theta'), grad L_pseudo(theta)>, the paper's eq. (12);
- exact:  no h; the teacher descends CE_l(theta'(phi)) itself, differentiating through the
          student's SGD step (second order; soft labels only).
For dot and exact, lr_S is the student's step size on this step's gradient (times 1 + m with
Nesterov momentum); weight decay and gradient clipping are left out of the derivative.
For taylor and dot the teacher descends `h * CE(y_hat, T(x_u))`: positive h (the step helped)
raises the teacher's probability of the label the student learnt from. The released code's sign
is the opposite (`feedback_sign=released`), harmless there only because its term is inert.
"""

import tensorflow as tf

from mpl_tf import losses

_SIGN = {"paper": 1.0, "released": -1.0}


def taylor(ce_old, ce_new, sign="paper"):
    """Old minus new labeled loss (paper sign)."""
    return _SIGN[sign] * (ce_old - ce_new)


def dot(student_lr, labeled_grads_after, pseudo_grads_before, sign="paper"):
    """Student lr times the inner product of the two global student gradients."""
    inner = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(labeled_grads_after,
                                                           pseudo_grads_before)])
    return _SIGN[sign] * tf.cast(student_lr, inner.dtype) * inner


def subtract_baseline(h, baseline, decay):
    """Moves the baseline toward h, then returns h minus the moved baseline (as released).

    `decay == 0` means no baseline: h is returned unchanged and the baseline stays put.
    """
    if not decay:
        return h
    baseline.assign(decay * baseline + (1.0 - decay) * tf.cast(h, baseline.dtype))
    return h - tf.cast(baseline, h.dtype)


def score_function_term(coefficient, pseudo_targets, teacher_logits, global_batch_size):
    """`coefficient * CE(y_hat, T(x_u))`; its teacher gradient is the taylor/dot feedback."""
    ce = losses.cross_entropy(tf.stop_gradient(pseudo_targets), teacher_logits)
    return tf.stop_gradient(coefficient) * losses.global_mean(ce, global_batch_size)


def exact_term(student_lr, pseudo_grads_recorded, labeled_grads_after):
    """A surrogate whose teacher gradient is d CE_l(theta - lr g(phi)) / d phi.

    `pseudo_grads_recorded` must have been computed under the teacher's tape (so they depend on
    the teacher's weights); `labeled_grads_after` is the global gradient of CE_l at theta'.
    """
    inner = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(v))
                      for g, v in zip(pseudo_grads_recorded, labeled_grads_after)])
    return -tf.cast(tf.stop_gradient(student_lr), inner.dtype) * inner
