"""`SplitData`, a dataset cut for semi-supervised training, and `from_arrays`, which cuts any
in-memory (train, test) pair the same way so every array-backed source shares one rule."""

import dataclasses

import numpy as np
import tensorflow as tf

from mpl_tf.data import examples as examples_lib
from mpl_tf.data import split_plan

SPLITS = ("labeled", "unlabeled", "val", "test")


@dataclasses.dataclass(frozen=True)
class SplitData:
    """A dataset cut for semi-supervised training.

    `unlabeled_labels` are the hidden labels of the unlabeled pool (-1 where unknown): they feed
    the pseudo-label accuracy metric and never a loss. `view` names the augmentation family
    (see augment.py). Images are pixels on the 0-255 scale, NHWC, uint8 for image sources (the
    views make float32 of them) and float32 otherwise; `pixel_mean`/
    `pixel_std` (per channel, same scale) are applied inside the networks, and are None for
    non-image data.

    Splits too big for memory (ImageNet, STL-10's unlabelled split, SVHN's extra split) are in
    `streams` (split name -> `Examples`) and their array fields are None; `examples(split)`
    reads either kind. `labeled_indices` index the training set in its fixed read order;
    `labeled_ids` name the same examples (file paths for folders, TFDS file names for ImageNet)
    where the source has names; `val_indices` index the validation holdout the same way (and
    `val_ids` name it, for folders). `skipped_images` counts the unreadable files a folder left
    out with --skip_corrupt_images (None for other sources).
    """

    name: str
    num_classes: int
    input_shape: tuple
    labeled_images: np.ndarray
    labeled_labels: np.ndarray
    labeled_indices: np.ndarray
    unlabeled_images: np.ndarray
    unlabeled_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    view: str
    class_names: tuple = ()
    pixel_mean: tuple = None
    pixel_std: tuple = None
    val_indices: np.ndarray = None
    labeled_ids: tuple = ()
    streams: dict = None
    val_ids: tuple = ()
    skipped_images: int = None

    def examples(self, split):
        """`split` (labeled, unlabeled, val or test) as `Examples`, from `streams` or arrays."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if self.streams and split in self.streams:
            return self.streams[split]
        return examples_lib.from_arrays(getattr(self, f"{split}_images"),
                                        getattr(self, f"{split}_labels"))

    def size(self, split):
        """Examples in `split` (approximate for hash-sampled ImageNet streams)."""
        if self.streams and split in self.streams:
            return self.streams[split].size
        return len(getattr(self, f"{split}_labels"))

    def info(self):
        """What exporters and evaluators need to rebuild the serving network's input side."""
        info = {"name": self.name, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape),
                "class_names": list(self.class_names) or [str(c) for c in
                                                          range(self.num_classes)],
                "pixel_mean": self.pixel_mean and list(self.pixel_mean),
                "pixel_std": self.pixel_std and list(self.pixel_std), "view": self.view}
        if self.skipped_images is not None:
            info["skipped_corrupt_images"] = self.skipped_images
        return info


def from_arrays(name, config, train, test, num_classes, default_num_val, view, class_names=(),
                train_ids=(), pixel_mean=None, pixel_std=None, extra_unlabeled=None):
    """SplitData from (images, labels) train and test pairs (uint8 or float32, 0-255, NHWC).

    The labeled subset, validation holdout and unlabeled pool come from `split_plan.plan`.
    `extra_unlabeled` joins the unlabeled pool: (images, labels) arrays (a folder's unlabeled/
    images) or `Examples` too big for memory (SVHN's extra split), which make the pool a stream.
    Without `pixel_mean`, per-channel statistics come from the labeled and unlabeled training
    arrays (never validation or test).
    """
    images, labels = train
    plan = split_plan.plan(labels, num_classes, config, default_num_val)
    unlabeled = (images[plan.unlabeled], labels[plan.unlabeled])
    streams = None
    if isinstance(extra_unlabeled, examples_lib.Examples):
        streams = {"unlabeled": examples_lib.from_arrays(*unlabeled).concatenate(
            extra_unlabeled)}
    elif extra_unlabeled is not None:
        unlabeled = tuple(np.concatenate(pair) for pair in zip(unlabeled, extra_unlabeled))
    if pixel_mean is None:
        training = [images[np.union1d(plan.labeled, plan.unlabeled)]]
        if extra_unlabeled is not None and not streams:
            training.append(extra_unlabeled[0])
        pixel_mean, pixel_std = pixel_stats(training)
    if streams:
        unlabeled = (None, None)
    return SplitData(
        name=name, num_classes=num_classes, input_shape=tuple(images.shape[1:]),
        labeled_images=images[plan.labeled], labeled_labels=labels[plan.labeled],
        labeled_indices=plan.labeled, unlabeled_images=unlabeled[0],
        unlabeled_labels=unlabeled[1], val_images=images[plan.val], val_labels=labels[plan.val],
        test_images=test[0], test_labels=test[1], view=view, class_names=tuple(class_names),
        pixel_mean=pixel_mean, pixel_std=pixel_std, val_indices=plan.val,
        labeled_ids=tuple(train_ids[i] for i in plan.labeled) if len(train_ids) else (),
        streams=streams)


def pixel_stats(arrays, chunk=4096):
    """Per-channel mean and std over image arrays on the 0-255 scale, summed in chunks so no
    float64 copy of a whole set is made (std 1 for a flat channel: never divide by zero)."""
    channels = arrays[0].shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for array in arrays:
        for start in range(0, len(array), chunk):
            part = array[start:start + chunk].astype(np.float64).reshape(-1, channels)
            total += part.sum(axis=0)
            squares += (part * part).sum(axis=0)
            count += len(part)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return (tuple(float(m) for m in mean),
            tuple(float(s) if s > 1e-3 else 1.0 for s in std))


def resize(images, size, chunk=2048, dtype=np.float32):
    """uint8 or float NHWC images resized to size x size (antialiased), 0-255 as `dtype`
    (uint8: rounded chunk by chunk, so a whole split is never held as float32)."""
    out = []
    for i in range(0, len(images), chunk):
        part = np.clip(tf.image.resize(tf.cast(images[i:i + chunk], tf.float32), (size, size),
                                       antialias=True).numpy(), 0.0, 255.0)
        out.append((np.round(part) if dtype == np.uint8 else part).astype(dtype))
    return np.concatenate(out)
