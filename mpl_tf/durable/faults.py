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


# A labeled loss this many times where it started, and above the loss of a uniform guess, has
# blown up (finite, so the non-finite guard let it through).
LOSS_GROWTH = 10.0


def divergence(epoch_losses, accuracy, num_classes, num_examples, steps=None):
    """{"diverged": bool, "warnings": [...]} for results.json, from the served network's labeled
    training loss per log window and its validation accuracy on `num_examples` examples (None:
    not known, streamed) after `steps` training steps.

    Diverged: a window's loss was not finite, or the loss ended LOSS_GROWTH-fold above where it
    started and above log(K), a uniform guess's loss. It started at its first window's value or
    at log(K), whichever is lower: a fresh network guesses about uniformly, so a loss already
    exploded in the first window (a far too high learning rate) counts too.

    Accuracy at chance with a finite loss that did not blow up is a milder warning, "still at
    chance after N steps": a short run, a learning rate too low or a slow start learn nothing
    yet without diverging, even when the loss sits a little above log(K). Chance: 1/K plus two
    standard errors.
    """
    warnings = []
    uniform = math.log(num_classes)
    losses = list(epoch_losses)
    first, last = (losses[0], losses[-1]) if losses else (None, None)
    bad = [i for i, loss in enumerate(losses) if not math.isfinite(loss)]
    if bad:
        warnings.append(f"the labeled training loss was not finite ({losses[bad[0]]} in log "
                        f"window {bad[0] + 1} of {len(losses)})")
    start = None if first is None or bad else min(first, uniform)
    exploded = start is not None and last > uniform and last > LOSS_GROWTH * start
    if exploded:
        warnings.append(f"the labeled training loss grew from {first:.4g} (first window) to "
                        f"{last:.4g} (last window), over {LOSS_GROWTH:g}x where it started "
                        f"({start:.4g}) and above a uniform guess's log(K) = {uniform:.4g}")
    chance = 1.0 / num_classes
    error = math.sqrt(chance * (1 - chance) / num_examples) if num_examples else 0.0
    at_chance = accuracy <= chance + 2.0 * error
    diverged = bool(bad) or exploded
    if at_chance and diverged:
        warnings.append(f"the validation accuracy {accuracy:.4f} is at chance ({chance:.4f} for "
                        f"{num_classes} classes)")
    elif at_chance:
        after = f" after {steps} steps" if steps else ""
        trend = "" if first is None else (
            f"; its labeled training loss went from {first:.4g} to {last:.4g}, finite and "
            f"{'rising' if last > first else 'not rising'}")
        warnings.append(f"still at chance{after}: the validation accuracy {accuracy:.4f} is "
                        f"at chance ({chance:.4f} for {num_classes} classes){trend}; train "
                        "longer (--train_steps), or check the learning rates and the labels")
    return {"diverged": diverged, "warnings": warnings}
