"""Full-state checkpoints: a resumed run continues exactly where the last checkpoint left it.

One `tf.train.Checkpoint` of the whole trainer holds every variable a step changes: teacher,
student, EMA, both optimizers (momentum, step counters), the feedback baseline, the guard's
counters and layers' random-seed state. The input is a pure function of the step (see
`pipeline.train_dataset(start_step)`), so no iterator state needs saving.
"""

import os
import re
import sys

import keras
import tensorflow as tf

from mpl_tf.errors import TrainingError
from mpl_tf.durable import marker
from mpl_tf.durable import readback
from mpl_tf.durable.seeds import random_states


def manager(trainer, directory, max_to_keep=3):
    # Keras keeps layers' random-seed state (dropout) out of `weights`, so name it explicitly.
    checkpoint = tf.train.Checkpoint(trainer=trainer, seed_states=random_states(trainer))
    _repair_state(directory)
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                      checkpoint_name="ckpt")


def _repair_state(directory):
    """Rewrites the state file (`checkpoint`) from the checkpoints in `directory` when it does
    not list exactly those: TensorFlow reads a missing or garbled state file as "no
    checkpoints", which would silently restart the run at step 0. Paths are written relative,
    so the run directory stays relocatable."""
    present = steps_present(directory)
    try:
        state = tf.train.get_checkpoint_state(directory) if os.path.isdir(directory) else None
    except Exception:  # noqa: BLE001 - unparsable (e.g. not text): rebuilt below
        state = None
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths] if state else []
    names = [f"ckpt-{step}" for step in present]
    if sorted(listed) == sorted(names):
        return
    if listed or os.path.exists(os.path.join(directory, "checkpoint")):
        print(f"warning: {directory}/checkpoint does not list the checkpoints there; "
              f"rebuilt it from the files ({', '.join(names) or 'none'})", file=sys.stderr)
    if not names:
        os.remove(os.path.join(directory, "checkpoint"))
        return
    times = [os.path.getmtime(os.path.join(directory, f"{n}.index")) for n in names]
    tf.compat.v1.train.update_checkpoint_state(directory, names[-1], names,
                                               all_model_checkpoint_timestamps=times)


def steps_present(directory):
    """Steps of the checkpoints in `directory` (those with an index file), oldest first."""
    names = os.listdir(directory) if os.path.isdir(directory) else []
    matches = (re.fullmatch(r"ckpt-([0-9]+)\.index", name) for name in names)
    return sorted(int(match.group(1)) for match in matches if match)


def restore_latest(checkpoint_manager):
    """Restores the newest readable checkpoint; returns its path, or None when there is none.

    An unreadable newest checkpoint (e.g. a machine died while writing it) is reported on
    stderr and the previous one is tried. When there are checkpoints but none can be read, the
    run's progress would be thrown away by starting over: TrainingError, unless the user asks
    for that (--overwrite deletes them).
    """
    for path in reversed(checkpoint_manager.checkpoints):
        try:
            readback.verify_checkpoint(path)  # the run's own, as it recorded it when saved
            checkpoint_manager.checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except Exception as e:  # noqa: BLE001 - any failure to read means "try an older one"
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"warning: checkpoint {path} is unreadable ({reason}); trying an older one",
                  file=sys.stderr)
    if checkpoint_manager.checkpoints:
        raise TrainingError(f"none of the {len(checkpoint_manager.checkpoints)} checkpoints in "
                            f"{checkpoint_manager.directory} is readable; restore them, or pass "
                            "--overwrite to delete this run and start over")
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
            self.save(step)

    def save(self, step):
        """Saves checkpoint `step` now (with its companions); also at a preemption."""
        directory = self.checkpoint_manager.directory
        for companion in self.companions:
            companion.save(directory, step)
        self.checkpoint_manager.save(checkpoint_number=step)
        kept = [int(path.rsplit("-", 1)[1]) for path in self.checkpoint_manager.checkpoints]
        for companion in self.companions:
            companion.prune(directory, kept)
        marker.record_checkpoints(directory, step)


def directory(model_dir, name):
    return os.path.join(model_dir, "checkpoints", name)
