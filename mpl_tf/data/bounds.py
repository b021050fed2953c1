"""Upper bounds of the size flags, checked against the data each applies to once it is known,
so a size that cannot work fails in one line before anything is written, instead of hanging or
training on nothing (`--cutout_size=1000` on 16-pixel digits blanked every strong view;
`--image_size=100000` on a folder hung in its scan). Each message names the flag, its value,
the limit and why (`too_big`). The flags' absolute caps, which need no data, are in their
Specs (config.py).

    --image_size              8x the dataset's largest native side (checked by the sources
                              before anything is resized; ImageNet's sizes vary: its cap only)
    --cutout_size             the side of the training images
    --labeled_batch_size      the labeled examples
    --unlabeled_batch_size    the unlabeled pool (also as --uda_ratio x --labeled_batch_size),
                              which may not be empty
    --finetune_batch_size     the labeled examples (when finetuning)
    --num_labeled, --num_val  the training set (split_plan checks them as it cuts)

--eval_batch_size has its cap only: a split smaller than it is evaluated in one batch.
"""

from mpl_tf.errors import ConfigError

# Upsampling further adds pixels but no detail, at the square of the cost in memory and time.
UPSAMPLING = 8


def too_big(flag, value, limit, why):
    """The one-line ConfigError of a size flag above its limit."""
    return ConfigError(f"--{flag}={value} is above its limit of {limit}: {why}")


def check_image_size(config, native_side, what):
    """Raises ConfigError if --image_size upsamples `what` (images whose side, or largest
    side, is `native_side` pixels) more than UPSAMPLING-fold."""
    limit = UPSAMPLING * int(native_side)
    if config.image_size > limit:
        raise too_big("image_size", config.image_size, limit,
                      f"{UPSAMPLING}x the {native_side}-pixel side of {what}; upsampling "
                      "further adds no detail, only memory and time")


def check(config, data, unlabeled_batches=True):
    """Raises ConfigError for the first size flag that `data` (a `SplitData`) cannot serve
    (for --mode=finetune, only the finetuning batch: the training ones ran already; the
    unlabeled batch only where the method learns from it, `unlabeled_batches`)."""
    where = f"--dataset={data.name}"
    labeled = data.size("labeled")
    if config.mode == "finetune":
        _check_finetuning(config, labeled, where)
        return
    if len(data.input_shape) == 3 and config.cutout_size:
        side = min(data.input_shape[:2])
        if config.cutout_size > side:
            raise too_big("cutout_size", config.cutout_size, side,
                          f"the side of {where}'s {side}-pixel training images; a larger "
                          "square blanks most or all of every strong view")
    if config.labeled_batch_size > labeled:
        raise too_big("labeled_batch_size", config.labeled_batch_size, labeled,
                      f"the labeled examples of {where}; a larger batch repeats examples "
                      "within every batch")
    unlabeled = data.size("unlabeled")
    if not unlabeled:  # every method reads unlabeled batches, even one that ignores them
        raise ConfigError(f"{where} leaves no unlabeled examples: its {labeled} labeled and "
                          f"{data.size('val')} validation examples are all of its training "
                          "examples, and --unlabeled_excludes_labeled keeps the labeled ones out "
                          "of the pool; lower --num_val or drop --unlabeled_excludes_labeled")
    if unlabeled_batches and config.global_unlabeled_batch_size > unlabeled:
        flag, value = (("uda_ratio", f"{config.uda_ratio} (an unlabeled batch of "
                        f"{config.global_unlabeled_batch_size})") if config.uda_ratio
                       else ("unlabeled_batch_size", config.unlabeled_batch_size))
        raise too_big(flag, value, unlabeled if flag == "unlabeled_batch_size"
                      else unlabeled // config.labeled_batch_size,
                      f"the {unlabeled} unlabeled examples of {where}; a larger batch repeats "
                      "examples within every batch")
    if config.finetune_steps:
        _check_finetuning(config, labeled, where)


def _check_finetuning(config, labeled, where):
    if config.finetune_batch_size > labeled:
        raise too_big("finetune_batch_size", config.finetune_batch_size, labeled,
                      f"the labeled examples of {where} that finetuning trains on; a larger "
                      "batch repeats examples within every batch")
