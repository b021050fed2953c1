"""One run, end to end: data -> networks -> fit() under the strategy -> evaluation -> results.

`main.py` parses flags; everything testable lives here.
"""

import csv
import functools
import os
import re
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from mpl_tf import attempts
from mpl_tf import checkpoints
from mpl_tf import config as config_lib
from mpl_tf import distribute
from mpl_tf import export
from mpl_tf import faults
from mpl_tf import feedback
from mpl_tf import loop
from mpl_tf import models
from mpl_tf import optim
from mpl_tf import plots
from mpl_tf import precision
from mpl_tf import preemption
from mpl_tf import run_dir
from mpl_tf.baselines import UDA, Supervised
from mpl_tf.config import TrainingError
from mpl_tf.data import pipeline
from mpl_tf.mpl import MetaPseudoLabels


def make_optimizer(config, role):
    """The teacher's or the student's optimizer, with its schedule (single networks use the
    teacher's settings: they are trained the way MPL's teacher is)."""
    lr = config.student_lr if role == "student" else config.teacher_lr
    warmup = config.student_warmup_steps if role == "student" else config.teacher_warmup_steps
    wait = config.student_wait_steps if role == "student" else 0
    schedule = functools.partial(optim.learning_rate, peak=lr, schedule=config.lr_schedule,
                                 total_steps=config.train_steps, warmup_steps=warmup,
                                 wait_steps=wait)
    loss_scale = precision.LossScale(dynamic=config.precision == "mixed_float16",
                                     name=f"{role}_loss_scale")
    return optim.MomentumSGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                             weight_decay=config.weight_decay, clip_norm=config.grad_clip_norm,
                             loss_scale=loss_scale, name=f"{role}_sgd")


def build_model(config, input_shape, num_classes, method=None, dtype=None, pixel_mean=None,
                pixel_std=None):
    """The compiled, built Keras model for `method`; call inside the strategy scope.

    Its networks compute in `dtype` (a dtype or Keras dtype policy; default: the policy of
    `config.precision`).

    Seeds: the teacher (and the UDA network) start from 2*seed, the student (and the supervised
    network) from 2*seed+1, so each control starts where its MPL counterpart starts.
    """
    method = method or config.method
    dtype = dtype or precision.POLICIES[config.precision]
    teacher_seed, student_seed = 2 * config.seed, 2 * config.seed + 1
    network = functools.partial(models.build, config, input_shape, num_classes, dtype=dtype,
                                pixel_mean=pixel_mean, pixel_std=pixel_std,
                                differentiated_twice=method == "mpl" and feedback.estimator_class(
                                    config.feedback).records_student_step)
    trained = {"mpl": [(teacher_seed, "teacher"), (student_seed, "student")],
               "uda": [(teacher_seed, "uda")], "supervised": [(student_seed, "supervised")]}
    networks = [network(seed=seed, name=name) for seed, name in trained[method]]
    average = (network(seed=student_seed, name=f"{networks[-1].name}_ema")
               if config.ema_decay else None)
    return assemble(config, method, networks, average, input_shape)


def assemble(config, method, networks, average, input_shape):
    """The compiled, built Keras model of `method` around its `networks` (teacher and student
    for MPL, else the one network), serving `average` as the EMA when given."""
    if method == "mpl":
        model = MetaPseudoLabels(*networks, config)
        optimizers = (make_optimizer(config, "teacher"), make_optimizer(config, "student"))
    else:
        model = {"uda": UDA, "supervised": Supervised}[method](*networks, config)
        optimizers = (make_optimizer(config, "teacher"),)
    if average is not None:
        model.attach_ema(average, config.ema_decay, config.ema_start_step)
    model.compile(*optimizers)  # our loop drives the steps; Keras compile options do not apply
    model.build_all(input_shape)
    return model


def fit(config, data, strategy, method=None, log_dir=None, initial_weights=None,
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
    diverged = StopOnNonFinite(config.max_nonfinite_steps)
    callbacks, start_step, saving = [diverged] + ([clock] if clock else []), 0, None
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
        callbacks += [keras.callbacks.TensorBoard(os.path.join(log_dir, "logs", log_name)),
                      keras.callbacks.CSVLogger(csv_log, append=start_step > 0), saving]
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
    epochs = _read_csv_log(csv_log) if log_dir else history.history
    return model, {name: float(np.mean(values)) for name, values in epochs.items()}


def _drop_csv_rows_from(path, first_epoch):
    """A resumed run logs its epochs again: drop rows the crash left for epochs from
    `first_epoch` on (written after the checkpoint the run resumes from)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < first_epoch]
    if len(kept) != len(lines):
        with open(path, "w") as f:
            f.writelines(kept)


def _read_csv_log(path):
    """Per-epoch logs of the whole run, across resumptions (fit's history has only its own)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    # Keras writes NA for a log an epoch left out (val_ columns; undefined optional logs).
    columns = {name: [float(row[name]) for row in rows if row[name] not in ("", "NA")]
               for name in rows[0] if name != "epoch" and not name.startswith("val_")}
    return {name: values for name, values in columns.items() if values}


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
        if not os.path.exists(path):
            return
        with np.load(path) as saved:
            weights = [saved[f"arr_{i}"] for i in range(len(saved.files) - 2)]
            self.best_accuracy = float(saved["best_accuracy"])
            self.best_step = int(saved["best_step"]) if int(saved["best_step"]) >= 0 else None
        self.best_weights = weights or None

    def on_epoch_end(self, epoch, logs=None):
        network = self.model.serving_network
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
    matches = (re.fullmatch(r"selection-(\d+)\.npz", name) for name in names)
    return [int(match.group(1)) for match in matches if match]


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops fit() once `limit` steps in a row were skipped by the non-finite guard."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if logs and int(logs.get("nonfinite_in_a_row", 0)) >= self.limit:
            self.stopped_at = int(self.model.steps_run.numpy())
            self.model.stop_training = True


def accuracy(network, data, split, batch_size):
    """Top-1 accuracy in [0, 1] of `network` (inference mode) on `split` ("val" or "test")."""
    correct = total = 0
    for images, labels in pipeline.eval_dataset(data, split, batch_size):
        predictions = tf.argmax(network(images, training=False), axis=-1, output_type=tf.int32)
        correct += int(tf.reduce_sum(tf.cast(predictions == tf.cast(labels, tf.int32), tf.int32)))
        total += int(labels.shape[0])
    return correct / total


def predictor(network, batch_size):
    """A numpy [N, ...] -> class ids function of a Keras network (inference mode)."""

    def predict(images):
        return np.concatenate([
            np.argmax(network(images[i:i + batch_size], training=False), axis=-1)
            for i in range(0, len(images), batch_size)])

    return predict


def run(config, data, strategy=None):
    """Trains (then finetunes, with --finetune_steps), evaluates and records one run in
    config.model_dir (already prepared by `run_dir.prepare`); returns the results dict.

    Under multi-worker training only the chief writes model_dir; the other workers run the
    same program and write to a temporary directory."""
    strategy = strategy or distribute.strategy(config.strategy, config.tpu,
                                                 config.multi_worker_timeout)
    resume_dir = config.model_dir
    if not distribute.is_chief(strategy):
        config = config.replace(model_dir=tempfile.mkdtemp(prefix="mpl_tf_worker_"))
        run_dir.prepare(config)
    with attempts.Clock(config.model_dir, "train") as clock:
        return _run(config, data, strategy, resume_dir, clock)


def _run(config, data, strategy, resume_dir, clock):
    run_dir.write_json(os.path.join(config.model_dir, "labeled_indices.json"),
                       {"dataset": data.name, "split_seed": config.split_seed,
                        "indices": data.labeled_indices.tolist(), "ids": list(data.labeled_ids),
                        "val_indices": None if data.val_indices is None
                        else data.val_indices.tolist(), "val_ids": list(data.val_ids)})
    run_dir.write_json(os.path.join(config.model_dir, "dataset_info.json"), data.info())
    keras.utils.set_random_seed(config.seed)
    model, train_logs = fit(config, data, strategy, log_dir=config.model_dir,
                            resume_dir=resume_dir, clock=clock)
    results = {
        "dataset": config.dataset, "method": config.method, "seed": config.seed,
        "split_seed": config.split_seed,
        # the count used, whichever flag chose it (--label_fraction, or a dataset's own subset)
        "num_labeled": len(data.labeled_labels),
        "train_steps": config.train_steps, **_accuracies(model, data, config),
        "train_logs_mean": train_logs,
    }
    if config.label_fraction:
        results["label_fraction"] = config.label_fraction
    results.update(_divergence(config, data, results["val_accuracy"]))
    if config.select_on_val:
        results["selected_step"] = getattr(model, "selected_step", None)  # None: no epoch ran
    if config.ema_decay:
        results["raw_test_accuracy"] = accuracy(model.trained_network, data, "test",
                                                config.eval_batch_size)
    if config.method == "mpl":
        results.update(label_type=config.label_type, feedback=config.feedback,
                       feedback_sign=config.feedback_sign,
                       feedback_forwards=config.feedback_forwards,
                       feedback_baseline_decay=config.feedback_baseline_decay,
                       feedback_diagnostics=feedback_diagnostics(train_logs),
                       teacher_test_accuracy=accuracy(model.teacher, data, "test",
                                                      config.eval_batch_size))
    if data.input_shape == (2,):
        results["control_supervised_test_accuracy"] = _plot_2d(config, data, strategy, model)
    served = model.serving_network
    if config.finetune_steps:
        run_dir.save_weights(config.model_dir, served, run_dir.TRAINED_WEIGHTS)
        served = _finetune_into(results, config, data, strategy, served, clock)
    run_dir.save_weights(config.model_dir, served)
    results.update(clock.results())
    _finish(config.model_dir, results)
    return results


# The served network's labeled training loss, per method (what divergence is judged on).
_LABELED_LOSS = {"mpl": "labeled_loss_new", "uda": "supervised", "supervised": "loss"}


def _divergence(config, data, val_accuracy):
    """results.json's `diverged` and `warnings` (see `faults.divergence`)."""
    epochs = _read_csv_log(os.path.join(config.model_dir, "train_log.csv"))
    return faults.divergence(epochs.get(_LABELED_LOSS[config.method], []), val_accuracy,
                             data.num_classes,
                             None if data.val_labels is None else len(data.val_labels))


def finetune_run(config, data, strategy=None):
    """--mode=finetune: finetunes the served network of the finished run in model_dir (as it
    was before any earlier finetuning) and updates its results.json (before and after)."""
    strategy = strategy or distribute.strategy(config.strategy, config.tpu,
                                                 config.multi_worker_timeout)
    results = run_dir.read_json(os.path.join(config.model_dir, "results.json"))
    with strategy.scope():
        network = build_model(config, data.input_shape, data.num_classes, "supervised",
                              pixel_mean=data.pixel_mean, pixel_std=data.pixel_std).network
    trained = os.path.join(config.model_dir, run_dir.TRAINED_WEIGHTS)
    if not os.path.exists(trained):  # never finetuned: the served network is the trained one
        run_dir.save_weights(config.model_dir, _load(network, config.model_dir),
                             run_dir.TRAINED_WEIGHTS)
    network.load_weights(trained)
    for key in ("val_accuracy", "test_accuracy"):  # undo an earlier finetuning's numbers
        results[key] = results.pop(f"{key}_before_finetune", results[key])
    if not _interrupted_finetuning(config):
        for stale in ("finetune_log.csv", os.path.join("checkpoints", "finetune"),
                      os.path.join("logs", "finetune")):
            run_dir.remove(os.path.join(config.model_dir, stale))
    with attempts.Clock(config.model_dir, "finetune",
                        before=results.get("wall_seconds", 0)) as clock:
        served = _finetune_into(results, config, data, strategy, network, clock)
    run_dir.save_weights(config.model_dir, served)
    results.update(clock.results())
    _finish(config.model_dir, results)
    return results


_FINETUNING_SETTINGS = "settings.json"  # in checkpoints/finetune: what its checkpoints are of


def _finetuning_settings(config):
    return {name: getattr(config, name) for name in config_lib.FINETUNING}


def _interrupted_finetuning(config):
    """Whether model_dir holds a finetuning stopped part way (preempted, killed) with the
    settings of `config`, which `fit` then resumes; anything else there (a finished
    finetuning being replaced, one of other settings) is stale."""
    directory = checkpoints.directory(config.model_dir, "finetune")
    settings = os.path.join(directory, _FINETUNING_SETTINGS)
    steps = checkpoints.steps_present(directory)
    return (os.path.exists(settings) and run_dir.read_json(settings) == _finetuning_settings(config)
            and bool(steps) and steps[-1] < config.finetune_steps)


def _load(network, model_dir):
    network.load_weights(os.path.join(model_dir, run_dir.SERVING_WEIGHTS))
    return network


def _finish(model_dir, results):
    """Writes results.json, then the export (its model card reads results.json); if the export
    fails, the previous results.json (or none) is put back, so the run does not look finished
    without its export."""
    path = os.path.join(model_dir, "results.json")
    previous = run_dir.read_json(path) if os.path.exists(path) else None
    run_dir.write_json(path, results)
    try:
        export.export_run(model_dir, overwrite=True)
    except BaseException:
        if previous is None:
            os.remove(path)
        else:
            run_dir.write_json(path, previous)
        raise


def _finetune_into(results, config, data, strategy, network, clock):
    """Finetunes a copy of `network` on the labeled data, moving the accuracies in `results`
    to `*_before_finetune` and recording the finetuned ones; returns the finetuned network."""
    for key in ("val_accuracy", "test_accuracy"):
        results[f"{key}_before_finetune"] = results[key]
    tuning = config.finetuning(strategy.num_replicas_in_sync)
    directory = checkpoints.directory(config.model_dir, "finetune")
    os.makedirs(directory, exist_ok=True)
    run_dir.write_json(os.path.join(directory, _FINETUNING_SETTINGS), _finetuning_settings(config))
    tuned, _ = fit(tuning, data, strategy, log_dir=config.model_dir,
                   initial_weights=network.get_weights(), log_name="finetune", clock=clock)
    results.update(_accuracies(tuned, data, config), finetune_steps=config.finetune_steps,
                   finetune_lr=config.finetune_lr, finetune_batch_size=config.finetune_batch_size)
    return tuned.serving_network


# results.json's feedback_diagnostics: the run's mean of each log window's diagnostic.
_DIAGNOSTICS = {
    "h_mean": "feedback_h",
    "h_std": "feedback_h_std",
    "h_positive_fraction": "feedback_h_positive",
    "coefficient_std": "feedback_coefficient_std",
    "h_pseudo_label_accuracy_correlation": "feedback_h_pseudo_label_accuracy_correlation",
    "share_of_teacher_gradient": "feedback_share_of_teacher_gradient",
    "teacher_uda_loss": "teacher_uda",
}


def feedback_diagnostics(train_logs):
    """The MPL run's feedback diagnostics, each the mean over its log windows (those it was
    defined in); a diagnostic no window defined is left out."""
    return {key: train_logs[name] for key, name in _DIAGNOSTICS.items() if name in train_logs}


def _accuracies(model, data, config):
    return {f"{split}_accuracy": accuracy(model.serving_network, data, split,
                                          config.eval_batch_size) for split in ("val", "test")}


def _plot_2d(config, data, strategy, model):
    """Draws truth | supervised control | this run, training the control if needed; returns
    the control's test accuracy."""
    control = model
    if config.method != "supervised":
        control, _ = fit(config, data, strategy, method="supervised")
    title = {"mpl": "Meta Pseudo Labels (student)", "uda": "UDA"}.get(config.method)
    panels = [("Ground truth", None),
              ("Supervised", predictor(control, config.eval_batch_size))]
    if title:
        panels.append((title, predictor(model, config.eval_batch_size)))
    plots.decision_boundaries(os.path.join(config.model_dir, "decision_boundary.png"),
                              data.test_images, data.test_labels, data.labeled_indices, panels)
    return accuracy(control.serving_network, data, "test", config.eval_batch_size)
