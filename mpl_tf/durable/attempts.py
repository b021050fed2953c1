"""Wall time across attempts: a run resumed after a crash or preemption took the time of every
process that worked on it, not just the last one's.

MODEL_DIR/attempts.json lists one entry per process (`mode`, `started` as Unix time,
`wall_seconds`); each process adds its entry when it starts and updates it at every epoch end
and when it finishes, so a process killed without warning (kill -9) counts up to its last epoch.
results.json's `wall_seconds` is their total and `wall_seconds_per_attempt` the list.
"""

import contextlib
import os
import time

import keras

from mpl_tf.durable import readback
from mpl_tf.durable import files
from mpl_tf.durable import run_dir

FILE = run_dir.ATTEMPTS


class Clock(keras.callbacks.Callback):
    """This process's attempt; also a Keras callback that records it at every epoch end."""

    def __init__(self, model_dir, mode, before=0.0):
        """`before`: the recorded wall time of a run from before attempts.json existed (one
        earlier attempt), used when the file is missing."""
        super().__init__()
        self.path = os.path.join(model_dir, FILE)
        self.started = time.time()
        if os.path.exists(self.path):
            self.earlier = readback.read_run_json(model_dir, FILE)
        elif before:
            self.earlier = [{"mode": "train", "started": None, "wall_seconds": before}]
        else:
            self.earlier = []
        self.entry = {"mode": mode, "started": round(self.started, 3), "wall_seconds": 0.0}
        self.record()

    def record(self):
        self.entry["wall_seconds"] = round(time.time() - self.started, 2)
        files.write_json(self.path, [*self.earlier, self.entry])

    def on_epoch_end(self, epoch, logs=None):
        self.record()

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        """An attempt that fails or is stopped records its time too (unless that write is what
        failed: the error being raised says why)."""
        if error_type is not None:
            with contextlib.suppress(OSError):
                self.record()

    def results(self):
        """{"wall_seconds": total, "wall_seconds_per_attempt": [...]}, recorded as of now."""
        self.record()
        per_attempt = [entry["wall_seconds"] for entry in [*self.earlier, self.entry]]
        return {"wall_seconds": round(sum(per_attempt), 2),
                "wall_seconds_per_attempt": per_attempt}
