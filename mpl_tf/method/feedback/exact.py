"""exact: no score function; the teacher descends CE_l(theta'(phi)) itself, differentiating
through the student's SGD step (second order; soft labels only, whose targets depend smoothly
on the teacher). Weight decay and gradient clipping are left out of the derivative."""

import tensorflow as tf

from mpl_tf.method.feedback.base import Estimator


class Exact(Estimator):
    records_student_step = True
    needs_labeled_gradients = True
    label_types = ("soft",)
    label_type_reason = "a hard label has no gradient to differentiate through"
    has_teacher_term = True

    def teacher_term(self, step, coefficient):
        """A surrogate whose teacher gradient is d CE_l(theta - lr g(phi)) / d phi: the
        recorded pseudo gradients g(phi) against the (constant) labeled gradient at theta'."""
        del coefficient
        inner = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(v))
                          for g, v in zip(step.pseudo_grads, step.labeled_grads_global)])
        return -tf.cast(tf.stop_gradient(step.step_size), inner.dtype) * inner
