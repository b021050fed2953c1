"""The run orchestration: one run as a transaction, end to end (data -> `training.train` under
the strategy -> accuracies -> the Two Moons control -> finetuning -> results.json and the
export), and `--mode=finetune` on a finished run.

`main.py` parses flags; the pieces live beside this module: `training` (one training,
resumable), `loop` (the step loop), `selection` (--select_on_val), `scoring` (accuracy),
`control_2d` (2-D data); what is trained is built by mpl_tf/method/build.py.
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
from mpl_tf.durable import marker
from mpl_tf.durable import readback
from mpl_tf.durable import files
from mpl_tf.durable import run_dir
from mpl_tf.run import control_2d
from mpl_tf.method.build import build_model
from mpl_tf.run import training
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
    files.write_json(os.path.join(config.model_dir, run_dir.LABELED_INDICES),
                       {"dataset": data.name, "split_seed": config.split_seed,
                        "indices": data.labeled_indices.tolist(), "ids": list(data.labeled_ids),
                        "val_indices": None if data.val_indices is None
                        else data.val_indices.tolist(), "val_ids": list(data.val_ids)})
    files.write_json(os.path.join(config.model_dir, run_dir.DATASET_INFO), data.info())
    keras.utils.set_random_seed(config.seed)
    model, train_logs = training.train(config, data, strategy, log_dir=config.model_dir,
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
    judged = _divergence(config, data, model, results["val_accuracy"])
    results.update(judged, warnings=warnings + judged["warnings"])
    if config.select_on_val:
        results["selected_step"] = getattr(model, "selected_step", None)  # None: no epoch ran
    if config.ema_decay:
        results["raw_test_accuracy"] = accuracy(model.trained_network, data, "test",
                                                config.eval_batch_size)
    results.update({name: getattr(config, name) for name in model.FLAGS})
    results.update(model.extra_results(train_logs, lambda network: accuracy(
        network, data, "test", config.eval_batch_size)))
    if data.input_shape == (2,):  # 2-D data: a supervised control beside the run, and a figure
        control = control_2d.train(config, data, strategy, model)
        control_2d.draw(config, data, control, model)
        results["control_supervised_test_accuracy"] = accuracy(
            control.serving_network, data, "test", config.eval_batch_size)
    served = model.serving_network
    if config.finetune_steps:
        run_dir.save_weights(config.model_dir, served, run_dir.TRAINED_WEIGHTS)
        served = _finetune_into(results, config, data, strategy, served, clock)
    return _finish(config, served, results, clock)


def _divergence(config, data, model, val_accuracy):
    """results.json's `diverged` and `warnings` (see `faults.divergence`), judged on the served
    network's labeled training loss (the log its method names)."""
    epochs = training.read_csv_log(os.path.join(config.model_dir, run_dir.csv_log("train")))
    return faults.divergence(epochs.get(model.LABELED_LOSS, []), val_accuracy,
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
    model_dir = config.model_dir
    results = readback.read_run_json(model_dir, run_dir.RESULTS)
    with strategy.scope():
        network = build_model(config.finetuning(strategy.num_replicas_in_sync),
                              data.input_shape, data.num_classes, pixel_mean=data.pixel_mean,
                              pixel_std=data.pixel_std).trained_network
    trained = os.path.join(model_dir, run_dir.TRAINED_WEIGHTS)
    readback.verify(trained, model_dir)  # recorded, and lost: not a run never finetuned
    first = not os.path.exists(trained)  # never finetuned: the served network is the trained one
    readback.load_weights(network, model_dir,
                          run_dir.SERVING_WEIGHTS if first else run_dir.TRAINED_WEIGHTS)
    if os.path.exists(os.path.join(model_dir, run_dir.ATTEMPTS)):
        readback.read_run_json(model_dir, run_dir.ATTEMPTS)  # the clock below adds to it
    interrupted = _interrupted_finetuning(config)
    # What finetuning rewrites is no longer the finished run's record until it finishes again.
    marker.record(model_dir, forget=_FINETUNING_WRITES)
    if first:
        run_dir.save_weights(model_dir, network, run_dir.TRAINED_WEIGHTS)
    for key in ("val_accuracy", "test_accuracy"):  # undo an earlier finetuning's numbers
        results[key] = results.pop(f"{key}_before_finetune", results[key])
    if not interrupted:
        for stale in (run_dir.csv_log("finetune"), checkpoints.directory("", "finetune"),
                      os.path.join(run_dir.LOGS, "finetune")):
            run_dir.remove(os.path.join(model_dir, stale))
    with attempts.Clock(model_dir, "finetune",
                        before=results.get("wall_seconds", 0)) as clock:
        served = _finetune_into(results, config, data, strategy, network, clock)
    return _finish(config, served, results, clock)


# The files --mode=finetune rewrites (the rest of a finished run it leaves as they were).
_FINETUNING_WRITES = (run_dir.ATTEMPTS, run_dir.RESULTS, run_dir.MODEL, run_dir.EXPORT,
                      run_dir.csv_log("finetune"), os.path.join(run_dir.CHECKPOINTS, "finetune"))


_FINETUNING_SETTINGS = "settings.json"  # in checkpoints/finetune: what its checkpoints are of


def _finetuning_settings(config):
    return {name: getattr(config, name) for name in config_lib.FINETUNING}


def _interrupted_finetuning(config):
    """Whether model_dir holds a finetuning stopped part way (preempted, killed) with the
    settings of `config`, which `fit` then resumes; anything else there (a finished
    finetuning being replaced, one of other settings) is stale."""
    directory = checkpoints.directory(config.model_dir, "finetune")
    steps = checkpoints.steps_present(directory)
    if not steps or steps[-1] >= config.finetune_steps:
        return False  # nothing to resume (its settings are not read)
    relative = os.path.join(run_dir.CHECKPOINTS, "finetune", _FINETUNING_SETTINGS)
    if not os.path.exists(os.path.join(config.model_dir, relative)):
        readback.verify(os.path.join(config.model_dir, relative), config.model_dir)
        return False
    return readback.read_run_json(config.model_dir, relative) == _finetuning_settings(config)


def _strategy(config):
    return strategies.strategy(config.strategy, config.tpu, config.multi_worker_timeout)


def _finish(config, served, results, clock):
    """Saves the `served` network, then writes `results` with the `clock`'s times as
    results.json, then the export of `config` and `served` as held here (its model card reads
    results.json); if the export fails, the previous results.json (or none) is put back, so the
    run does not look finished without its export. Returns `results`."""
    model_dir = config.model_dir
    run_dir.save_weights(model_dir, served)
    results.update(clock.results())
    path = os.path.join(model_dir, run_dir.RESULTS)
    previous = run_dir.read_json(path) if os.path.exists(path) else None
    files.write_json(path, results)
    try:
        export.export_run(model_dir, overwrite=True, config=config, network=served)
    except BaseException:
        if previous is None:
            os.remove(path)
        else:
            files.write_json(path, previous)
        raise
    # The finished run's record: what readers check its files against (TensorBoard's event
    # files aside, which nothing reads back).
    marker.seal(model_dir, [entry for entry in run_dir.ENTRIES if entry != run_dir.LOGS])
    return results


def _finetune_into(results, config, data, strategy, network, clock):
    """Finetunes a copy of `network` on the labeled data, moving the accuracies in `results`
    to `*_before_finetune` and recording the finetuned ones; returns the finetuned network."""
    for key in ("val_accuracy", "test_accuracy"):
        results[f"{key}_before_finetune"] = results[key]
    tuning = config.finetuning(strategy.num_replicas_in_sync)
    directory = checkpoints.directory(config.model_dir, "finetune")
    os.makedirs(directory, exist_ok=True)
    files.write_json(os.path.join(directory, _FINETUNING_SETTINGS), _finetuning_settings(config))
    tuned, _ = training.train(tuning, data, strategy, log_dir=config.model_dir,
                              initial_weights=network.get_weights(), log_name="finetune",
                              clock=clock)
    results.update(_accuracies(tuned, data, config), finetune_steps=config.finetune_steps,
                   finetune_lr=config.finetune_lr, finetune_batch_size=config.finetune_batch_size)
    return tuned.serving_network


def _accuracies(model, data, config):
    return {f"{split}_accuracy": accuracy(model.serving_network, data, split,
                                          config.eval_batch_size) for split in ("val", "test")}
