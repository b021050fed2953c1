"""Model selection on the validation split (--select_on_val): a callback that keeps the best
epoch's weights, and the files that carry its state across a resume (selection-STEP.npz beside
each checkpoint).
"""

import os
import re

import keras
import numpy as np

from mpl_tf.durable import readback
from mpl_tf.durable import run_dir
from mpl_tf.run.scoring import accuracy


class SelectOnValidation(keras.callbacks.Callback):
    """Model selection on the validation split, never the test split: evaluates the served
    network after every epoch and puts the best epoch's weights back when training ends.

    Its state (the best epoch so far, and its weights) is saved with every checkpoint and
    restored with it, so a resumed run selects among all its epochs, not just those after the
    resume.
    """

    def __init__(self, data, batch_size):
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.best_accuracy, self.best_step, self.best_weights = -1.0, None, None

    def save(self, directory, step):
        """Saves the state as of checkpoint `step` (through a temporary file)."""
        os.makedirs(directory, exist_ok=True)
        path = selection_path(directory, step)
        tmp = path[:-len(".npz")] + ".tmp.npz"
        np.savez(tmp, *(self.best_weights or []), best_accuracy=self.best_accuracy,
                 best_step=-1 if self.best_step is None else self.best_step)
        os.replace(tmp, path)

    def prune(self, directory, kept_steps):
        """Removes the state saved with checkpoints no longer kept."""
        for step in _selection_steps(directory):
            if step not in kept_steps:
                run_dir.remove(selection_path(directory, step))

    def restore(self, directory, step):
        """The state saved with checkpoint `step`; none there (a run dir from before selection
        was checkpointed) leaves it fresh."""
        path = selection_path(directory, step)
        readback.verify_checkpoint_file(path)
        if not os.path.exists(path):
            return
        try:
            with np.load(path) as saved:
                weights = [saved[f"arr_{i}"] for i in range(len(saved.files) - 2)]
                self.best_accuracy = float(saved["best_accuracy"])
                self.best_step = int(saved["best_step"]) if int(saved["best_step"]) >= 0 else None
        except Exception as e:  # noqa: BLE001 - numpy and zipfile raise many kinds
            raise readback.damaged(path, e) from None
        self.best_weights = weights or None

    def on_epoch_end(self, epoch, logs=None):
        network = self.model.serving_network
        if logs is not None and "val_accuracy" in logs:  # measured by logs.ValidationAccuracy
            val_accuracy = logs["val_accuracy"]
        else:
            val_accuracy = accuracy(network, self.data, "val", self.batch_size)
            if logs is not None:
                logs["val_accuracy"] = val_accuracy
        if val_accuracy > self.best_accuracy:
            self.best_accuracy = val_accuracy
            self.best_step = int(self.model.steps_run.numpy())
            self.best_weights = [w.numpy() for w in network.weights]

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.serving_network.set_weights(self.best_weights)
            self.model.selected_step = self.best_step


def selection_path(directory, step):
    return os.path.join(directory, f"selection-{step}.npz")


def _selection_steps(directory):
    """Steps of the selection states saved in `directory`."""
    names = os.listdir(directory) if os.path.isdir(directory) else []
    matches = (re.fullmatch(r"selection-([0-9]+)\.npz", name) for name in names)
    return [int(match.group(1)) for match in matches if match]
