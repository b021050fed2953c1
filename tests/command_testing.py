"""Running `python -m mpl_tf.main` from the tests: in a subprocess (a fresh process, as a user
runs it), in this one (TensorFlow is already up, so it is fast), or stopped by a signal; and
comparing what two runs checkpointed."""

import hashlib
import os
import subprocess
import sys
import time

import numpy as np

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


def signal_when(command, path, signum, env=None, capture=False, deadline_seconds=900):
    """Starts `command` (an argv, from the repo root, `env` added to this environment), sends
    it `signum` once `path` exists (or when it has ended, or at the deadline: TensorFlow alone
    can take a minute to start on a busy machine) and waits for it; returns the process, with
    `stdout_text` and `stderr_text` when `capture`."""
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})},
                               stdout=pipe, stderr=pipe, text=True)
    deadline = time.time() + deadline_seconds
    while not os.path.exists(path) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signum)
    process.stdout_text, process.stderr_text = process.communicate(timeout=deadline_seconds)
    return process


def assert_same_checkpoints(model_dir, other_dir, phase, step, more_than):
    """Checkpoint `step` of `phase` holds the same trained state (more than `more_than` of the
    trainer's variables) in both run directories, to atol 1e-6."""
    a, b = (_trainer_values(d, phase, step) for d in (model_dir, other_dir))
    assert a.keys() == b.keys() and len(a) > more_than
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-6, err_msg=name)


def _trainer_values(model_dir, phase, step):
    import tensorflow as tf

    from mpl_tf.durable import checkpoints

    reader = tf.train.load_checkpoint(
        os.path.join(checkpoints.directory(str(model_dir), phase), f"ckpt-{step}"))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if "trainer" in n}


def error_lines(captured):
    """The non-blank lines a command wrote on stderr (pytest's captured output)."""
    return [line for line in captured.err.splitlines() if line.strip()]


def fingerprint(directory):
    """{relative path: sha256} of every file under `directory`."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found
