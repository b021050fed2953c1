"""Faults a long run meets, each said in one line naming the cause and what to change: a full
disk, a run directory that became unwritable, a batch that does not fit in memory; and a run
that finished but diverged, which must not look like a success.

Checkpoints are written by TensorFlow to new files that only the state file's update makes
current, so a failed write leaves the last good checkpoint as it was (and an unreadable newest
one is skipped on resume, see `checkpoints.restore_latest`); the message names it.
"""

import errno
import math
import os
import re

from mpl_tf.durable import checkpoints

_NO_SPACE = "No space left on device"
_OUT_OF_MEMORY_FLAGS = ("--labeled_batch_size, --unlabeled_batch_size (or --uda_ratio), "
                        "--eval_batch_size or --image_size")


def describe(error, model_dir):
    """One line for a fault of the machine rather than the code, or None for anything else."""
    import tensorflow as tf  # already imported by training; not needed to check flags

    text = reason(error)
    code = getattr(error, "errno", None)
    where = f"; the last checkpoint, {_last_checkpoint(model_dir)}, is intact"
    if code == errno.ENOSPC or _NO_SPACE in str(error):
        return (f"the disk holding --model_dir={model_dir} is full ({text}); free space (or "
                f"pass another --model_dir) and rerun to resume{where}")
    if code in (errno.EACCES, errno.EROFS, errno.EPERM) or isinstance(
            error, tf.errors.PermissionDeniedError):
        return (f"cannot write to --model_dir={model_dir} ({text}); make it writable and rerun "
                f"to resume{where}")
    if isinstance(error, (MemoryError, tf.errors.ResourceExhaustedError)):
        return (f"out of memory ({text}): a batch does not fit; lower "
                f"{_OUT_OF_MEMORY_FLAGS} and rerun{where}")
    return None


# What TensorFlow wraps an op's error in: the function it ran in, the op, where it was detected.
_DECORATIONS = (re.compile(r"\{\{function_node [^}]*\}\}\s*"), re.compile(r"\s*\[Op:\w+\]"))
_OOM = re.compile(r"OOM when allocating tensor with shape\[[^\]]*\] and type \w+")


def reason(error):
    """The cause an error states, in one line: for TensorFlow's out-of-memory error the tensor
    that did not fit ("OOM when allocating tensor with shape[...] and type float"), otherwise
    its first line of substance, without the function-node and op names TensorFlow wraps it in
    (a graph error's first line is only "Graph execution error:"); the error's type name when
    it says nothing."""
    text = getattr(error, "message", None) or str(error)
    oom = _OOM.search(text)
    if oom:
        return oom.group(0)
    for pattern in _DECORATIONS:
        text = pattern.sub("", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.endswith(":")
              and not line.startswith(("Detected at node", "File \"", "[["))]
    return (useful or lines or [type(error).__name__])[0]


def _last_checkpoint(model_dir):
    """The newest checkpoint file in the run directory, or 'none yet'."""
    found = []
    for phase in ("train", "finetune"):
        directory = checkpoints.directory(model_dir, phase)
        found += [os.path.join(directory, f"ckpt-{step}")
                  for step in checkpoints.steps_present(directory)]
    if not found:
        return "none yet"
    return max(found, key=lambda path: os.path.getmtime(f"{path}.index"))


# A labeled loss this many times its first epoch's value, and above the loss of a uniform guess,
# has blown up (finite, so the non-finite guard let it through).
LOSS_GROWTH = 10.0


def divergence(epoch_losses, accuracy, num_classes, num_examples):
    """{"diverged": bool, "warnings": [...]} for results.json, from the served network's labeled
    training loss per epoch and its validation accuracy on `num_examples` examples (None:
    not known, streamed).

    Diverged: the loss grew LOSS_GROWTH-fold and ended above log(K) (worse than a uniform
    guess), or the accuracy is at chance while the loss is above log(K) (confidently wrong).
    Accuracy at chance with a loss near log(K) is a warning only: the network learned nothing
    yet, which a too short run does without diverging. Chance: 1/K plus two standard errors.
    """
    warnings = []
    uniform = math.log(num_classes)
    first, last = (epoch_losses[0], epoch_losses[-1]) if epoch_losses else (None, None)
    exploded = last is not None and last > LOSS_GROWTH * first and last > uniform
    if exploded:
        warnings.append(f"the labeled training loss grew from {first:.4g} (first epoch) to "
                        f"{last:.4g} (last epoch)")
    chance = 1.0 / num_classes
    error = math.sqrt(chance * (1 - chance) / num_examples) if num_examples else 0.0
    at_chance = accuracy <= chance + 2.0 * error
    if at_chance:
        warnings.append(f"the validation accuracy {accuracy:.4f} is at chance ({chance:.4f} for "
                        f"{num_classes} classes)")
    confidently_wrong = at_chance and last is not None and last > uniform and not exploded
    if confidently_wrong:
        warnings.append(f"the labeled training loss ended at {last:.4g}, above a uniform "
                        f"guess's log(K) = {uniform:.4g}")
    diverged = exploded or confidently_wrong
    return {"diverged": bool(diverged), "warnings": warnings}
