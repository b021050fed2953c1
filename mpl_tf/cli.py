"""What the command lines share: TensorFlow's C++ start-up notices are written to file
descriptor 2 before any log setting applies, and a command's error must be its only line."""

import contextlib
import os


@contextlib.contextmanager
def stderr_silenced():
    """Sends file descriptor 2 to /dev/null for the duration."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
