"""TensorFlow's own logging, kept off the terminal while a command runs, so a failure reaches the
user as the one line `cli.run` prints: an out-of-memory batch makes TensorFlow's allocator dump
some 200 lines of its state before the error reaches Python, and a failed checkpoint write
two more.

Its C++ logging reads TF_CPP_MIN_LOG_LEVEL once, when it first logs (while TensorFlow is
imported), so the level must be in the environment before that import: `before_import` sets it
to 2 (errors only; no INFO or WARNING lines) unless the user set it, and `after_import` quiets
TensorFlow's Python logger the same way. A user who sets TF_CPP_MIN_LOG_LEVEL (to 0, say, to
debug) gets TensorFlow's logging back, both kinds. Keras' progress bar is on stdout and stays.
"""

import logging
import os

VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"  # 0 all, 1 no INFO, 2 no INFO or WARNING, 3 no ERROR either
# Whether the user chose the level (read when mpl_tf is first imported, before anything here
# sets it).
USER_SET = VARIABLE in os.environ


def before_import():
    """Sets TensorFlow's C++ log level to errors only, unless the user set it; call before the
    first `import tensorflow`."""
    if not USER_SET:
        os.environ.setdefault(VARIABLE, QUIET_LEVEL)


def after_import(tf):
    """TensorFlow's Python logger (retracing notices, deprecations) at errors only, unless the
    user set TF_CPP_MIN_LOG_LEVEL."""
    if not USER_SET:
        tf.get_logger().setLevel(logging.ERROR)
