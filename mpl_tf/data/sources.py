"""Data sources behind `--dataset`: each returns a `SplitData`, read (or, for ImageNet, checked
and indexed) before any training so bad data fails fast with a one-line ConfigError.

    two_moons                the paper's toy problem (arrays of 2-d points)
    digits                   scikit-learn's 8x8 digits, embedded (digits.py)
    cifar10, cifar100, svhn_cropped, stl10   TFDS, small images (tfds_sources.py)
    imagenet, imagenet2012   TFDS ImageNet-2012 streams (imagenet.py)
    folder:PATH              your own image folder (folder.py)
"""

import numpy as np

from mpl_tf.config import ConfigError
from mpl_tf.data import splits
from mpl_tf.data.split_data import SplitData

DATASETS = ("two_moons", "digits", "cifar10", "cifar100", "svhn_cropped", "stl10", "imagenet",
            "imagenet2012", "folder:PATH")
FOLDER_PREFIX = "folder:"


def load(config):
    """The `SplitData` that `config.dataset` names, with the labeled subset from `split_seed`."""
    from mpl_tf.data import digits, folder, imagenet, tfds_sources

    name = config.dataset
    if name == "two_moons":
        return two_moons(config.num_labeled, config.split_seed)
    if name == "digits":
        return digits.load(config)
    if name in tfds_sources.SPECS:
        return tfds_sources.load(config)
    if name in ("imagenet", "imagenet2012"):
        return imagenet.load(config)
    check_name(name)
    return folder.load(config, name[len(FOLDER_PREFIX):])


def check_name(name):
    """Raises ConfigError unless `name` is a registered dataset or folder:PATH."""
    if name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX):
        return
    if name not in DATASETS:
        raise ConfigError(f"--dataset={name} is not valid; valid values: {', '.join(DATASETS)}")


def has_extra_split(name):
    """Whether --extra_unlabeled can add anything to `name`'s unlabeled pool."""
    from mpl_tf.data import tfds_sources

    spec = tfds_sources.SPECS.get(name)
    return bool(spec and spec.extra_split)


def two_moons(num_labeled, split_seed, num_points=2000, num_val=500):
    """The paper's toy problem: 1,000 noise-free points per moon, all of them unlabeled and all
    of them the test set; `num_labeled` of them carry labels. Validation is `num_val` other
    points on the same moons (midway between grid positions, never a test point), so nothing is
    ever selected on the test set."""
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=num_points, noise=0.0, shuffle=False)
    angles = (np.arange(num_val // 2) + 0.5) * np.pi / (num_val // 2)
    outer = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    inner = np.stack([1.0 - np.cos(angles), 0.5 - np.sin(angles)], axis=1)
    val_points = np.concatenate([outer, inner]).astype(np.float32)
    val_labels = np.repeat([0, 1], num_val // 2).astype(np.int32)
    points, labels = points.astype(np.float32), labels.astype(np.int32)
    chosen = splits.labeled_indices(labels, num_labeled, 2, split_seed)
    return SplitData(
        name="two_moons", num_classes=2, input_shape=(2,),
        labeled_images=points[chosen], labeled_labels=labels[chosen], labeled_indices=chosen,
        unlabeled_images=points, unlabeled_labels=labels,
        val_images=val_points, val_labels=val_labels,
        test_images=points, test_labels=labels, view="gaussian_noise",
        class_names=("upper moon", "lower moon"))
