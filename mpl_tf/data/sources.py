"""The datasets `--dataset` names, each a module of mpl_tf.data whose `load(config)` returns a
`SplitData`, read (or, for ImageNet, checked and indexed) before any training so bad data fails
fast with a one-line ConfigError.

    two_moons                the paper's toy problem (two_moons.py)
    digits                   scikit-learn's 8x8 digits, embedded (digits.py)
    fashion_mnist            Fashion-MNIST's IDX files: a folder, Debian's package or TFDS
    cifar10, cifar100, svhn_cropped, stl10   TFDS, small images (tfds_sources.py)
    imagenet, imagenet2012   TFDS ImageNet-2012 streams (imagenet.py)
    folder:PATH              your own image folder (folder.py)

A new dataset is one module plus one line in `_MODULES` (and its test). A module whose datasets
have an extra split that --extra_unlabeled adds to the pool says so with `has_extra_split(name)`.
Names are known without importing TensorFlow: the flags are checked before it is imported.
"""

import importlib

from mpl_tf.data import label_swap
from mpl_tf.errors import ConfigError

# --dataset name: module in mpl_tf.data
_MODULES = {
    "two_moons": "two_moons",
    "digits": "digits",
    "fashion_mnist": "fashion_mnist",
    "cifar10": "tfds_sources",
    "cifar100": "tfds_sources",
    "svhn_cropped": "tfds_sources",
    "stl10": "tfds_sources",
    "imagenet": "imagenet",
    "imagenet2012": "imagenet",
}
FOLDER_PREFIX = "folder:"  # folder:PATH, the one dataset that takes an argument
DATASETS = (*_MODULES, f"{FOLDER_PREFIX}PATH")


def load(config):
    """The `SplitData` that `config.dataset` names, with the labeled subset from `split_seed`."""
    check_name(config.dataset)
    return label_swap.apply(config, _module(config.dataset).load(config))


def check_name(name):
    """Raises ConfigError unless `name` is a registered dataset or folder:PATH."""
    if folder_root(name) is not None:
        return
    if name not in _MODULES:
        raise ConfigError(f"--dataset={name} is not valid; valid values: {', '.join(DATASETS)}")


def folder_root(name):
    """The PATH of a folder:PATH dataset name; None for any other name (and for "folder:")."""
    if not name.startswith(FOLDER_PREFIX):
        return None
    return name[len(FOLDER_PREFIX):] or None


def folder_dataset(root):
    """The --dataset name of the image folder at `root`."""
    return f"{FOLDER_PREFIX}{root}"


def has_extra_split(name):
    """Whether --extra_unlabeled can add anything to `name`'s unlabeled pool."""
    module = _module(name)
    return hasattr(module, "has_extra_split") and module.has_extra_split(name)


def _module(name):
    module = "folder" if folder_root(name) is not None else _MODULES[name]
    return importlib.import_module(f"mpl_tf.data.{module}")
