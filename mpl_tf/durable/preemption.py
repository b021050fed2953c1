"""SIGTERM (how cloud VMs and TPU maintenance announce preemption) and Ctrl-C (SIGINT) during
training stop it at the next step boundary, where `training.train` saves a checkpoint and raises
`Interrupted`; the command line prints one line and exits 128 + the signal number, as a shell
would report. Outside training (start-up, evaluation, export) they keep their default effect:
there is no progress to save beyond the last checkpoint, which a rerun resumes from.

The handlers only set a flag: a signal lands between two Python bytecodes, which may be inside
a callback or half way through writing a checkpoint, so acting there could corrupt state; the
training loop polls `requested()` after every step call instead. A second signal while the
first is being handled stops at once (KeyboardInterrupt), without saving.

Not tf.distribute.experimental.PreemptionCheckpointHandler: its documentation limits it to
MultiWorkerMirroredStrategy and TPUStrategy, so it cannot cover the one-machine strategies
(default, mirrored) most runs use; it also takes only SIGTERM (not Ctrl-C), keeps its own step
counter in the checkpoint, and exits the process itself after saving, which would skip the
selection state saved with each checkpoint and the one-line report. What it adds is agreeing
on the step across workers, which this does not do (README, "Faults and bad input").
"""

import contextlib
import signal
import threading

_requested = []  # signal numbers received while handling is on


class Interrupted(Exception):
    """Training stopped on a signal, after saving a checkpoint at `step` (None: none saved)."""

    def __init__(self, signum, step, directory):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.step, self.directory = signum, step, directory


def requested():
    """The signal number that asked to stop, or None."""
    return _requested[0] if _requested else None


def _handle(signum, frame):
    if _requested:
        raise KeyboardInterrupt
    _requested.append(signum)


@contextlib.contextmanager
def handling():
    """Turns SIGTERM and SIGINT into stop requests for the duration (in the main thread only:
    Python takes signal handlers nowhere else, and signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested.clear()
