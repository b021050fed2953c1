"""TensorFlow imported and started with its C++ start-up notices kept off the user's stderr:
they reach file descriptor 2 before any log setting applies, and a command's error must be its
only line. Everything that imports TensorFlow at the top of a command takes it from here."""

import contextlib
import os


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
    with stderr_silenced():
        import tensorflow as tf
    return tf


def start_tensorflow(start=None):
    """Starts TensorFlow's runtime with descriptor 2 silenced (its device probing writes notices
    there too) and returns what `start()` returns: by default the logical devices; a command
    whose distribution strategy must be TensorFlow's first work passes its creation."""
    tf = import_tensorflow()
    with stderr_silenced():
        return start() if start else tf.config.list_logical_devices()
