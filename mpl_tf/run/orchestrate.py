"""The run orchestration: one run as a transaction, end to end (data -> `fitting.fit` under the
strategy -> accuracies -> the Two Moons control -> finetuning -> results.json and the export),
and `--mode=finetune` on a finished run.

`main.py` parses flags; the pieces live in their own modules: `building` (networks and
optimizers), `fitting` (one training, resumable), `selection` (--select_on_val), `scoring`
(accuracy), `supervised_control` (2-D data); `trainer.py` is the Keras base class of the
trained models and `loop.py` the step loop.
"""

import os
import tempfile

import keras

from mpl_tf.durable import attempts
from mpl_tf.durable import checkpoints
from mpl_tf import config as config_lib
from mpl_tf.durable import strategies
from mpl_tf.serving import export
from mpl_tf.durable import faults
from mpl_tf.durable import run_dir
from mpl_tf.run import control_2d
from mpl_tf.method.build import build_model
from mpl_tf.run.fit import fit, read_csv_log
from mpl_tf.run.scoring import accuracy


def run(config, data, strategy=None, warnings=()):
    """Trains (then finetunes, with --finetune_steps), evaluates and records one run in
    config.model_dir (already prepared by `run_dir.prepare`); returns the results dict, whose
    `warnings` start with the given ones (said before training, e.g. `mismatch`'s).

    Under multi-worker training only the chief writes model_dir; the other workers run the
    same program and write to a temporary directory."""
    strategy = strategy or _strategy(config)
    resume_dir = config.model_dir
    if not strategies.is_chief(strategy):
        config = config.replace(model_dir=tempfile.mkdtemp(prefix="mpl_tf_worker_"))
        run_dir.prepare(config)
    with attempts.Clock(config.model_dir, "train") as clock:
        return _run(config, data, strategy, resume_dir, clock, list(warnings))


def _run(config, data, strategy, resume_dir, clock, warnings):
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
    judged = _divergence(config, data, results["val_accuracy"])
    results.update(judged, warnings=warnings + judged["warnings"])
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
    if data.input_shape == (2,):  # 2-D data: a supervised control beside the run, and a figure
        control = control_2d.train(config, data, strategy, model)
        control_2d.draw(config, data, control, model)
        results["control_supervised_test_accuracy"] = accuracy(
            control.serving_network, data, "test", config.eval_batch_size)
    served = model.serving_network
    if config.finetune_steps:
        run_dir.save_weights(config.model_dir, served, run_dir.TRAINED_WEIGHTS)
        served = _finetune_into(results, config, data, strategy, served, clock)
    return _finish(config.model_dir, served, results, clock)


# The served network's labeled training loss, per method (what divergence is judged on).
_LABELED_LOSS = {"mpl": "labeled_loss_new", "uda": "supervised", "supervised": "loss"}


def _divergence(config, data, val_accuracy):
    """results.json's `diverged` and `warnings` (see `faults.divergence`)."""
    epochs = read_csv_log(os.path.join(config.model_dir, "train_log.csv"))
    return faults.divergence(epochs.get(_LABELED_LOSS[config.method], []), val_accuracy,
                             data.num_classes, _validation_size(data),
                             steps=config.train_steps)


def _validation_size(data):
    """Examples in the validation split (streamed ones too), or None if unknown."""
    if data.streams and "val" in data.streams:
        return data.streams["val"].size
    return None if data.val_labels is None else len(data.val_labels)


def finetune_run(config, data, strategy=None):
    """--mode=finetune: finetunes the served network of the finished run in model_dir (as it
    was before any earlier finetuning) and updates its results.json (before and after)."""
    strategy = strategy or _strategy(config)
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
    return _finish(config.model_dir, served, results, clock)


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


def _strategy(config):
    return strategies.strategy(config.strategy, config.tpu, config.multi_worker_timeout)


def _finish(model_dir, served, results, clock):
    """Saves the `served` network, then writes `results` with the `clock`'s times as
    results.json, then the export (its model card reads results.json); if the export fails,
    the previous results.json (or none) is put back, so the run does not look finished
    without its export. Returns `results`."""
    run_dir.save_weights(model_dir, served)
    results.update(clock.results())
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
    return results


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
