"""TensorFlow kept off the terminal while a command runs, so a failure reaches the user as the
one line `cli.run` prints. Its C++ start-up notices reach file descriptor 2 before any log
setting applies: TensorFlow is imported and started with descriptor 2 silenced (everything that
imports it at the top of a command takes it from here). Its logging afterwards (an
out-of-memory batch makes the allocator dump some 200 lines of its state before the error
reaches Python, a failed checkpoint write two more) is kept to errors: the C++ logging reads
TF_CPP_MIN_LOG_LEVEL once, while TensorFlow is imported, so `before_import` sets it to 2 unless
the user set it, and `after_import` quiets TensorFlow's Python logger the same way. A user who
sets TF_CPP_MIN_LOG_LEVEL (to 0, say, to debug) gets both kinds back. Keras' progress bar is on
stdout and stays."""

import contextlib
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



_real_stderr = []  # the saved descriptor 2 while it is silenced


@contextlib.contextmanager
def stderr_silenced():
    """Sends file descriptor 2 to /dev/null for the duration."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    _real_stderr.append(saved)
    try:
        yield
    finally:
        _real_stderr.remove(saved)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def real_stderr():
    """The descriptor of the user's stderr, also from inside `stderr_silenced` (for a helper
    process whose one line must reach the user while TensorFlow starts)."""
    return _real_stderr[0] if _real_stderr else 2


def import_tensorflow():
    """TensorFlow, imported with descriptor 2 silenced (a module that needs it at import time
    takes it from here, so importing a command prints nothing)."""
    before_import()
    with stderr_silenced():
        import tensorflow as tf
    after_import(tf)
    return tf


def start_tensorflow(start=None):
    """Starts TensorFlow's runtime with descriptor 2 silenced (its device probing writes notices
    there too) and returns what `start()` returns: by default the logical devices; a command
    whose distribution strategy must be TensorFlow's first work passes its creation."""
    tf = import_tensorflow()
    with stderr_silenced():
        return start() if start else tf.config.list_logical_devices()
