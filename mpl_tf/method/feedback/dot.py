"""dot: h = lr_S * <grad CE_l(theta'), grad L_pseudo(theta)>, the paper's eq. (12).

lr_S is the student's step size on this step's gradient (times 1 + m with Nesterov momentum);
weight decay and gradient clipping are left out of the derivative.
"""

import tensorflow as tf

from mpl_tf.method.feedback.base import ScoreFunction


class Dot(ScoreFunction):
    needs_labeled_gradients = True

    def signal(self, step):
        inner = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(step.labeled_grads_global,
                                                               step.pseudo_grads_global)])
        return self.sign * tf.cast(step.step_size, inner.dtype) * inner
