"""Running `python -m mpl_tf.main` from the tests: in a subprocess (a fresh process, as a user
runs it) or in this one (TensorFlow is already up, so it is fast)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main_subprocess(*args, env=None, timeout=600):
    """The finished process (text stdout and stderr) of the command with `args`, from the repo
    root; `env` adds to this process's environment."""
    return subprocess.run([sys.executable, "-m", "mpl_tf.main", *args], cwd=REPO,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def main_in_process(*args):
    """mpl_tf.main's exit status with `args`, run in this process (flags parsed afresh)."""
    from absl import flags

    from mpl_tf import main as main_lib

    flags.FLAGS.unparse_flags()
    return main_lib.main(["main", *args])
