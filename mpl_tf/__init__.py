"""mpl_tf: Meta Pseudo Labels in TensorFlow 2 / Keras 3, as commands and as a library.

The library API (stable: these names keep their meaning across releases; README "Library API"):

    MetaPseudoLabels      the Keras model: your teacher and student, one train step
    UDA, Supervised       the controls, one network each, built the same way
    FixMatch              FixMatch (Sohn et al., 2020), one network, built the same way
    Config, make_config   the settings the train steps read (make_config validates them)
    ConfigError           what make_config raises for a value that cannot run
    LABEL_TYPES, FEEDBACKS, FEEDBACK_SIGNS   the choices of label_type, feedback, feedback_sign
    sgd, MomentumSGD, learning_rate          the optimizers the train steps need, and schedules
    training_batches      tf.data batches ((x_l, y_l), (x_u_weak, x_u_strong, y_u)) from arrays
    losses, feedback      the loss functions and the teacher's feedback estimators (packages:
                          feedback.build(name) makes one; mpl_tf/method/feedback/base.py is the
                          interface of a new one)

Names resolve on first use (PEP 562), so `import mpl_tf` and the commands' `--help` do not
import TensorFlow until a name that needs it is asked for.
"""

import importlib

__version__ = "0.1.0"

# Public name -> (module, attribute in it; None for the module itself).
_API = {
    "MetaPseudoLabels": ("mpl_tf.method.mpl", "MetaPseudoLabels"),
    "UDA": ("mpl_tf.method.controls", "UDA"),
    "Supervised": ("mpl_tf.method.controls", "Supervised"),
    "FixMatch": ("mpl_tf.method.fixmatch", "FixMatch"),
    "Config": ("mpl_tf.config", "Config"),
    "ConfigError": ("mpl_tf.errors", "ConfigError"),
    "LABEL_TYPES": ("mpl_tf.method.pseudo_labels", "NAMES"),
    "FEEDBACKS": ("mpl_tf.method.feedback", "NAMES"),
    "FEEDBACK_SIGNS": ("mpl_tf.config", "FEEDBACK_SIGNS"),
    "make_config": ("mpl_tf.library", "make_config"),
    "sgd": ("mpl_tf.library", "sgd"),
    "training_batches": ("mpl_tf.library", "training_batches"),
    "MomentumSGD": ("mpl_tf.method.optim", "MomentumSGD"),
    "learning_rate": ("mpl_tf.method.optim", "learning_rate"),
    "losses": ("mpl_tf.method.losses", None),
    "feedback": ("mpl_tf.method.feedback", None),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'mpl_tf' has no attribute {name!r}")
    module_name, attribute = _API[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted({*globals(), *_API})
