"""The teacher's feedback estimators, by the name `--feedback` takes.

A new estimator is one module with an `Estimator` subclass (mpl_tf/feedback/base.py says what
it may declare and override) plus one line here; the step, the flag's choices and the config's
checks read this registry.
"""

from mpl_tf.feedback.base import Estimator, StudentStep
from mpl_tf.feedback.dot import Dot
from mpl_tf.feedback.exact import Exact
from mpl_tf.feedback.none import NoFeedback
from mpl_tf.feedback.taylor import Taylor

ESTIMATORS = {
    "taylor": Taylor,
    "dot": Dot,
    "exact": Exact,
    "none": NoFeedback,
}


def build(name, sign="paper"):
    """The estimator `--feedback=name`, with `--feedback_sign=sign`."""
    return ESTIMATORS[name](sign)


__all__ = ["ESTIMATORS", "Estimator", "StudentStep", "build"]
