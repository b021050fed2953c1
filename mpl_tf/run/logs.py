"""What one training logs per --log_every window, as callbacks of `fit.fit`:

    ValidationAccuracy   the served network's accuracy on the validation split, as the window's
                         `val_accuracy` (when the data has one)
    Scalars              TensorBoard scalars in model_dir/logs/{train,finetune}/ itself, at the
                         global step (the teacher updates so far), one tag per log: epoch_NAME
                         (Keras' name for a window's value; the README's)
    CsvLog               {train,finetune}_log.csv: one row per window, a column per log

Keras' own TensorBoard callback wrote at the window index (0, 1, 2, ...) into a `train/`
folder one level deeper, and its CSVLogger added a `val_` column for every log when no
validation log was there (22 columns, always NA).
"""

import csv
import os

import keras
import tensorflow as tf

from mpl_tf.run.scoring import accuracy


def has_validation(data):
    """Whether `data` (a `SplitData`) holds a non-empty validation split."""
    if data.streams and "val" in data.streams:
        return data.streams["val"].size > 0
    return data.val_labels is not None and len(data.val_labels) > 0


class ValidationAccuracy(keras.callbacks.Callback):
    """Adds `val_accuracy`, the served network's top-1 accuracy on `data`'s validation split,
    to every window's logs, so the callbacks after it (model selection, TensorBoard, CSV) see
    it."""

    def __init__(self, data, batch_size):
        super().__init__()
        self.data, self.batch_size = data, batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_accuracy"] = accuracy(self.model.serving_network, self.data, "val",
                                            self.batch_size)


TAG_PREFIX = "epoch_"


class Scalars(keras.callbacks.Callback):
    """Writes every log of a window as a TensorBoard scalar epoch_NAME, at the global step
    (`model.steps_run`), to event files directly in `directory`; a resumed run appends to the
    same curves."""

    def __init__(self, directory):
        super().__init__()
        self.directory = directory
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        if not logs:
            return
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.directory)
        step = int(self.model.steps_run.numpy())
        with self.writer.as_default(step=step):
            for name, value in sorted(logs.items()):
                tf.summary.scalar(TAG_PREFIX + name, float(value))
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class CsvLog(keras.callbacks.CSVLogger):
    """Keras' CSVLogger with the columns of the logs there are: no `val_` copy of every column
    (Keras adds them, empty, whenever a window's logs hold no validation log), and a resumed
    run keeps the columns of the header it appends to."""

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = self._header() or sorted(logs or {})
        super().on_epoch_end(epoch, logs)

    def _header(self):
        """The columns (after `epoch`) of the file being appended to, if any."""
        if not (self.append and os.path.exists(self.filename)):
            return None
        with open(self.filename, newline="") as f:
            header = next(csv.reader(f), None)
        return header[1:] if header else None
