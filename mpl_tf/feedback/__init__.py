"""The teacher's feedback estimators, by the name `--feedback` takes.

A new estimator is one module with an `Estimator` subclass (mpl_tf/feedback/base.py says what
it may declare and override) plus one line here; the step and the config's checks read this
registry.
"""

from mpl_tf.config import ConfigError
from mpl_tf.feedback.base import Estimator, StudentStep
from mpl_tf.feedback.dot import Dot
from mpl_tf.feedback.exact import Exact
from mpl_tf.feedback.forwards import FORWARDS
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


def check_config(config):
    """Raises ConfigError unless `--feedback` and `--feedback_forwards` name registered choices
    and, for an MPL run, the estimator has a gradient for `--label_type` and takes
    `--feedback_sign`."""
    for flag, value, registry in (("feedback", config.feedback, ESTIMATORS),
                                  ("feedback_forwards", config.feedback_forwards, FORWARDS)):
        if value not in registry:
            raise ConfigError(f"--{flag}={value} is not valid; valid values: "
                              f"{', '.join(registry)}")
    if config.method != "mpl":
        return
    estimator = ESTIMATORS[config.feedback]
    if config.label_type not in estimator.label_types:
        raise ConfigError(f"--feedback={config.feedback} needs --label_type="
                          f"{' or '.join(estimator.label_types)} (got "
                          f"--label_type={config.label_type}): {estimator.label_type_reason}")
    if not estimator.takes_sign and config.feedback_sign != "paper":
        raise ConfigError(f"--feedback_sign does not apply to --feedback={config.feedback}, "
                          "which takes the true derivative (use --feedback_sign=paper)")


__all__ = ["ESTIMATORS", "Estimator", "StudentStep", "build", "check_config"]
