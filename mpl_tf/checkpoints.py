"""Full-state checkpoints: a resumed run continues exactly where the last checkpoint left it.

One `tf.train.Checkpoint` of the whole trainer holds every variable a step changes: teacher,
student, EMA, both optimizers (momentum, step counters), the feedback baseline, the guard's
counters and layers' random-seed state. The input is a pure function of the step (see
`pipeline.train_dataset(start_step)`), so no iterator state needs saving.
"""

import os
import sys

import keras
import tensorflow as tf

from mpl_tf.trainer import random_states


def manager(trainer, directory, max_to_keep=3):
    # Keras keeps layers' random-seed state (dropout) out of `weights`, so name it explicitly.
    checkpoint = tf.train.Checkpoint(trainer=trainer, seed_states=random_states(trainer))
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                      checkpoint_name="ckpt")


def restore_latest(checkpoint_manager):
    """Restores the newest readable checkpoint; returns its path, or None when there is none.

    An unreadable newest checkpoint (e.g. a machine died while writing it) is reported on
    stderr and the previous one is tried.
    """
    for path in reversed(checkpoint_manager.checkpoints):
        try:
            checkpoint_manager.checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except Exception as e:  # noqa: BLE001 - any failure to read means "try an older one"
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"warning: checkpoint {path} is unreadable ({reason}); trying an older one",
                  file=sys.stderr)
    return None


class SaveEvery(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch whose last step is a multiple of `every`,
    and at the last step; named by the step.

    Each of `companions` (state kept outside the trainer, e.g. model selection's) saves its own
    with `save(directory, step)` just before, so a checkpoint never exists without it, and
    drops what belongs to checkpoints no longer kept with `prune(directory, kept_steps)` just
    after.
    """

    def __init__(self, checkpoint_manager, every, last_step, companions=()):
        super().__init__()
        self.checkpoint_manager = checkpoint_manager
        self.every = every
        self.last_step = last_step
        self.companions = companions

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.steps_run.numpy())
        if step % self.every == 0 or step >= self.last_step:
            directory = self.checkpoint_manager.directory
            for companion in self.companions:
                companion.save(directory, step)
            self.checkpoint_manager.save(checkpoint_number=step)
            kept = [int(path.rsplit("-", 1)[1]) for path in self.checkpoint_manager.checkpoints]
            for companion in self.companions:
                companion.prune(directory, kept)


def directory(model_dir, name):
    return os.path.join(model_dir, "checkpoints", name)
