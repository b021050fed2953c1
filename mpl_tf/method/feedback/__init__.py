"""The teacher's feedback estimators, by the name `--feedback` takes.

A new estimator is one module with an `Estimator` subclass (mpl_tf/method/feedback/base.py says what
it may declare and override) plus one line in `_CLASSES`; the flag's choices, the step and the
config's checks read this registry. Names are known without importing TensorFlow (the flags
are defined and checked before it is imported); an estimator's module loads when it is built.
"""

import importlib

from mpl_tf.method.feedback.forwards import FORWARDS

# name: (module in this package, class)
_CLASSES = {
    "taylor": ("taylor", "Taylor"),
    "dot": ("dot", "Dot"),
    "exact": ("exact", "Exact"),
    "none": ("none", "NoFeedback"),
}
NAMES = tuple(_CLASSES)


def estimator_class(name):
    """The `Estimator` subclass registered as `name`."""
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(f"mpl_tf.method.feedback.{module}"), cls)


def build(name, sign="paper"):
    """The estimator `--feedback=name`, with `--feedback_sign=sign`."""
    return estimator_class(name)(sign)


def check_config(config):
    """Raises ConfigError unless the estimator of a run whose method takes `--feedback` (MPL)
    has a gradient for `--label_type` and takes `--feedback_sign`."""
    from mpl_tf import method
    from mpl_tf.errors import ConfigError

    if "feedback" not in method.get(config.method).FLAGS:
        return
    estimator = estimator_class(config.feedback)
    if config.label_type not in estimator.label_types:
        raise ConfigError(f"--feedback={config.feedback} needs --label_type="
                          f"{' or '.join(estimator.label_types)} (got "
                          f"--label_type={config.label_type}): {estimator.label_type_reason}")
    if not estimator.takes_sign and config.feedback_sign != "paper":
        raise ConfigError(f"--feedback_sign does not apply to --feedback={config.feedback}, "
                          "which takes the true derivative (use --feedback_sign=paper)")


__all__ = ["FORWARDS", "NAMES", "build", "check_config", "estimator_class"]
