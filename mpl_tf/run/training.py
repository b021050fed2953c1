"""One training of a method on a run's data: builds its model under the strategy, resumes from
the newest checkpoint, logs (TensorBoard, CSV) and checkpoints, stops on divergence or a
signal, and returns the run's mean logs; `loop.fit` is the step loop it drives.

The CSV log is the run's record across resumptions, so a resume first drops the rows a crash
left after its checkpoint.
"""

import csv
import os
import sys

import keras
import numpy as np

from mpl_tf.durable import checkpoints
from mpl_tf.run import logs
from mpl_tf.run import loop
from mpl_tf.run import teacher_init
from mpl_tf.durable import preemption
from mpl_tf.durable import readback
from mpl_tf.method.build import build_model
from mpl_tf.errors import TrainingError
from mpl_tf.data import pipeline
from mpl_tf.run.selection import SelectOnValidation


def train(config, data, strategy, method=None, log_dir=None, initial_weights=None,
          log_name="train", resume_dir=None, clock=None):
    """Trains `method` on `data` for config.train_steps steps, from `initial_weights` for the
    trained network if given, resuming from the newest checkpoint in `resume_dir` (default
    `log_dir`; under multi-worker training every worker resumes from the chief's). `clock`
    (an `attempts.Clock`) records the time spent at every epoch end.

    A SIGTERM or Ctrl-C (see `preemption`) saves a checkpoint at the step reached, possibly
    mid-epoch, and raises `preemption.Interrupted`.

    Returns the model and its training logs averaged over the whole run (every epoch has the
    same number of steps, so the mean of epoch means is the mean over steps).
    """
    with strategy.scope():
        model = build_model(config, data.input_shape, data.num_classes, method,
                            pixel_mean=data.pixel_mean, pixel_std=data.pixel_std)
        if initial_weights is not None:
            model.trained_network.set_weights(initial_weights)
        elif config.teacher_init and method is None:  # the run's own method, not a control
            teacher_init.load(model, config, data.input_shape, data.num_classes)
    diverged = StopOnNonFinite(config.max_nonfinite_steps)
    callbacks, start_step, saving = [diverged] + ([clock] if clock else []), 0, None
    if log_dir and logs.has_validation(data):  # each window's val_accuracy: TensorBoard, CSV
        callbacks.append(logs.ValidationAccuracy(data, config.eval_batch_size))
    selection = SelectOnValidation(data, config.eval_batch_size) if config.select_on_val else None
    if selection:
        callbacks.append(selection)
    steps_per_epoch = min(config.log_every, config.train_steps)
    if log_dir:
        saver = checkpoints.manager(model, checkpoints.directory(log_dir, log_name))
        source = checkpoints.manager(model, checkpoints.directory(resume_dir or log_dir,
                                                                   log_name))
        if checkpoints.restore_latest(source):
            start_step = int(model.steps_run.numpy())
            print(f"Resuming {log_name} from step {start_step}", flush=True)
            if selection:
                selection.restore(source.directory, start_step)
        csv_log = os.path.join(log_dir, f"{log_name}_log.csv")
        _drop_csv_rows_from(csv_log, start_step // steps_per_epoch)
        saving = checkpoints.SaveEvery(saver, config.checkpoint_every or steps_per_epoch,
                                       config.train_steps,
                                       companions=[selection] if selection else [])
        callbacks += [logs.Scalars(os.path.join(log_dir, "logs", log_name)),
                      logs.CsvLog(csv_log, append=start_step > 0), saving]
    with preemption.handling():
        history = loop.fit(model, strategy,
                           pipeline.train_input(data, config, strategy, start_step),
                           initial_epoch=start_step // steps_per_epoch,
                           skip_steps=start_step % steps_per_epoch,
                           epochs=config.train_steps // steps_per_epoch,
                           steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                           steps_per_execution=config.steps_per_execution,
                           jit_compile=config.jit_compile,
                           verbose=1 if sys.stdout.isatty() else 2)
        signum = preemption.requested()
    if signum is not None:
        step = int(model.steps_run.numpy()) if saving else None
        if saving and history.interrupted:  # else training ended: its last step is saved
            saving.save(step)
        raise preemption.Interrupted(signum, step,
                                     saving.checkpoint_manager.directory if saving else None)
    if diverged.stopped_at is not None:
        raise TrainingError(f"stopped at step {diverged.stopped_at}: "
                            f"{config.max_nonfinite_steps} steps in a row had non-finite losses "
                            "or gradients (each was skipped); lower the learning rates or check "
                            "the data")
    epochs = read_csv_log(csv_log) if log_dir else history.history
    return model, {name: float(np.mean(values)) for name, values in epochs.items()
                   if not name.startswith("val_")}


def _drop_csv_rows_from(path, first_epoch):
    """A resumed run logs its epochs again: drop rows the crash left for epochs from
    `first_epoch` on (written after the checkpoint the run resumes from)."""
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            lines = f.readlines()
        kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < first_epoch]
    except ValueError as e:  # UnicodeDecodeError too: not the CSV Keras wrote
        raise readback.damaged(path, e) from None
    if len(kept) != len(lines):
        with open(path, "w") as f:
            f.writelines(kept)


def read_csv_log(path):
    """Per-epoch logs of the whole run, across resumptions (fit's history has only its own)."""
    try:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        # Keras writes NA for a log an epoch left out (val_ columns; undefined optional logs).
        columns = {name: [float(row[name]) for row in rows if row[name] not in ("", "NA")]
                   for name in rows[0] if name != "epoch" and not name.startswith("val_")}
    except (ValueError, TypeError, IndexError, OSError) as e:  # not the CSV Keras wrote
        raise readback.damaged(path, e) from None
    return {name: values for name, values in columns.items() if values}


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops the training once `limit` steps in a row were skipped by the non-finite guard."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if logs and int(logs.get("nonfinite_in_a_row", 0)) >= self.limit:
            self.stopped_at = int(self.model.steps_run.numpy())
            self.model.stop_training = True
