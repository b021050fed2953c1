"""none: no feedback term; the student distils the teacher, which trains on its own supervised
and UDA objectives (the ablation that tells whether the feedback does anything). h is still
measured and logged."""

from mpl_tf.method.feedback.base import Estimator


class NoFeedback(Estimator):
    """Every default: the logged signal (signed as `--feedback_sign` says, so it reads as the
    run it is the ablation of), no coefficient, no teacher term."""

    takes_sign = True
