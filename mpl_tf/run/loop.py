"""The custom fit loop: the model's Keras `train_step` run by `strategy.run` inside a
tf.function, with Keras callbacks and progress bar around it (`training.train` sets up one
training around it; `orchestrate.py` orchestrates the run).

Keras 3's `fit()` cannot run under MultiWorkerMirroredStrategy (keras-team/keras#20585: its
symbolic build all-reduces a per-replica batch); this loop can, so every strategy, from one CPU
to several hosts, takes the same path and users keep fit()'s callbacks and progress bar.
"""

import keras
import tensorflow as tf

from mpl_tf.durable import preemption


def fit(model, strategy, dataset, *, epochs, steps_per_epoch, initial_epoch=0, skip_steps=0,
        steps_per_execution=1, jit_compile=False, callbacks=(), verbose=2):
    """Runs `epochs - initial_epoch` epochs of `steps_per_epoch` steps, the first of them
    without its first `skip_steps` (already run before a checkpoint saved mid-epoch); returns
    the History, with `interrupted` True if a signal (see `preemption`) stopped it mid-epoch:
    then it stops after the step call in progress, without ending the epoch or the training
    (no callback sees a partial epoch as finished, or the training as ended). A signal during
    an epoch's last step call lets that epoch end, and stops before the next.

    `dataset` yields global batches (it is split over replicas) or is already distributed.
    `steps_per_execution` steps run per tf.function call: in a tf.while_loop on one replica,
    unrolled with several (merge_call inside a while loop fails under MirroredStrategy).
    `jit_compile` compiles the step function with XLA.
    """
    if not isinstance(dataset, tf.distribute.DistributedDataset):
        dataset = strategy.experimental_distribute_dataset(dataset)
    iterator = iter(dataset)
    run_steps = step_function(model, strategy, steps_per_execution, jit_compile)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps_per_epoch)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        logs = {}
        first = skip_steps if epoch == initial_epoch else 0
        for begin in range(first, steps_per_epoch, steps_per_execution):
            if begin > first and preemption.requested() is not None:
                model.history.interrupted = True
                return model.history
            callback_list.on_train_batch_begin(begin)
            logs = logs_to_python(strategy, run_steps(iterator))
            callback_list.on_train_batch_end(begin + steps_per_execution - 1, logs)
            if model.stop_training:
                break
        callback_list.on_epoch_end(epoch, defined_logs(model, logs))
        if model.stop_training:
            break
        if preemption.requested() is not None and epoch < epochs - 1:
            model.history.interrupted = True
            return model.history
    callback_list.on_train_end()
    model.history.interrupted = False
    return model.history


def step_function(model, strategy, steps_per_execution, jit_compile):
    """A tf.function running `steps_per_execution` training steps on the next batches of a
    distributed iterator; returns the last step's (per-replica) logs."""
    compiled = tf.function(model.train_step, jit_compile=True) if jit_compile else model.train_step

    def one_step(iterator):
        return strategy.run(compiled, args=(next(iterator),))

    if steps_per_execution == 1:
        return tf.function(one_step)
    if strategy.num_replicas_in_sync == 1:
        @tf.function
        def run_steps(iterator):
            logs = one_step(iterator)
            for _ in tf.range(steps_per_execution - 1):
                logs = one_step(iterator)
            return logs
        return run_steps

    @tf.function
    def run_unrolled(iterator):
        for _ in range(steps_per_execution):
            logs = one_step(iterator)
        return logs
    return run_unrolled


def defined_logs(model, logs):
    """An epoch's logs without the model's optional logs that its window left undefined, so
    CSV and TensorBoard show no made-up value (e.g. no correlation with hidden labels on a
    folder's unlabeled images, which have none)."""
    undefined = {name for name in getattr(model, "OPTIONAL_LOGS", ())
                 if not bool(model.trackers[name].defined())}
    return {name: value for name, value in logs.items() if name not in undefined}


def logs_to_python(strategy, logs):
    """Training logs are already global (equal on every replica): take the first copy (reading
    them waits for the step)."""
    return {name: float(strategy.experimental_local_results(value)[0])
            for name, value in logs.items()}
