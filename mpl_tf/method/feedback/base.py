"""What every feedback estimator shares: the record of the student's step it reads, and the
interface the train step calls.

The feedback tells the teacher how much the student's step on the pseudo labels changed the
student's loss on labeled data. An estimator turns the record of that step (`StudentStep`) into
a logged signal h and a term of the teacher's loss; the train step knows nothing else about it.
"""

import dataclasses
from typing import Optional

import tensorflow as tf

from mpl_tf.method import losses

SIGNS = {"paper": 1.0, "released": -1.0}


@dataclasses.dataclass(frozen=True)
class StudentStep:
    """The student's step as the feedback sees it. Losses and `*_global` gradients are summed
    over replicas; `pseudo_grads` are this replica's (recorded by the teacher's tape when the
    estimator `records_student_step`)."""
    labeled_loss_before: tf.Tensor
    labeled_loss_after: tf.Tensor
    step_size: tf.Tensor              # lr_S, times 1 + m with Nesterov momentum
    pseudo_grads: list
    pseudo_grads_global: list
    labeled_grads_global: Optional[list]  # of the loss after, at theta' (when needed)
    pseudo_targets: tf.Tensor
    teacher_strong_logits: tf.Tensor
    global_unlabeled_batch_size: int


class Estimator:
    """The interface, and the defaults of an estimator with no teacher term.

    Class attributes say what the step must provide: `records_student_step` (the teacher's tape
    records the student's step, for a second-order derivative), `needs_labeled_gradients` (the
    student's labeled gradient after its step), `label_types` (the pseudo-label types the
    estimator has a gradient for), `takes_sign` (whether `--feedback_sign` applies) and
    `has_teacher_term` (whether `teacher_term` is overridden: else it is a constant 0);
    `label_type_reason` is the config error's explanation of `label_types`.
    """

    records_student_step = False
    needs_labeled_gradients = False
    label_types = ("sampled", "argmax", "soft")
    label_type_reason = ""
    takes_sign = False
    has_teacher_term = False

    def __init__(self, sign="paper"):
        self.sign = SIGNS[sign]

    def signal(self, step):
        """h: the labeled loss before minus after the step, positive when it helped (times -1
        with `--feedback_sign=released`); logged by every estimator, and overridden by those
        with an h of their own."""
        return self.sign * (step.labeled_loss_before - step.labeled_loss_after)

    def coefficient(self, h, baseline, decay):
        """The scalar that multiplies the score-function term (none here)."""
        del baseline, decay
        return tf.zeros_like(h)

    def teacher_term(self, step, coefficient):
        """The feedback's term of the teacher's loss (none here)."""
        del coefficient
        return tf.zeros((), step.labeled_loss_after.dtype)


class ScoreFunction(Estimator):
    """The teacher descends `coefficient * CE(y_hat, T(x_u))`, coefficient = h minus a moving
    baseline: positive h (the step helped) raises the teacher's probability of the
    label the student learnt from. The released code's sign is the opposite
    (`--feedback_sign=released`), harmless there only because its term is inert. One-hot
    labels only: with soft labels this term's gradient is exactly zero (the released code's)."""

    label_types = ("sampled", "argmax")
    label_type_reason = ("CE(stop_grad(p), logits) has zero gradient, the released code's "
                         "inert term; use --feedback=exact for soft labels")
    takes_sign = True
    has_teacher_term = True

    def coefficient(self, h, baseline, decay):
        return subtract_baseline(h, baseline, decay)

    def teacher_term(self, step, coefficient):
        ce = losses.cross_entropy(tf.stop_gradient(step.pseudo_targets),
                                  step.teacher_strong_logits)
        return tf.stop_gradient(coefficient) * losses.global_mean(
            ce, step.global_unlabeled_batch_size)


def subtract_baseline(h, baseline, decay):
    """Moves the baseline toward h, then returns h minus the moved baseline (as released).

    `decay == 0` means no baseline: h is returned unchanged and the baseline stays put.
    """
    if not decay:
        return h
    baseline.assign(decay * baseline + (1.0 - decay) * tf.cast(h, baseline.dtype))
    return h - tf.cast(baseline, h.dtype)
