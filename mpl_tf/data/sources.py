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


def check_config(config):
    """Raises ConfigError unless `config.dataset` is registered, the flags that apply to some
    datasets only (--extra_unlabeled, --cache_dir, --fashion_mnist_dir) apply to it and
    --swap_label_pairs is well formed."""
    check_name(config.dataset)
    if config.extra_unlabeled and not has_extra_split(config.dataset):
        raise ConfigError(f"--extra_unlabeled: --dataset={config.dataset} has no extra split "
                          "(svhn_cropped has)")
    if config.cache_dir and folder_root(config.dataset) is None:
        raise ConfigError(f"--cache_dir applies to --dataset=folder:PATH only (got "
                          f"--dataset={config.dataset})")
    if config.fashion_mnist_dir and config.dataset != "fashion_mnist":
        raise ConfigError(f"--fashion_mnist_dir applies to --dataset=fashion_mnist only (got "
                          f"--dataset={config.dataset})")
    label_swap.parse(config.swap_label_pairs)


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
    module = "folder.source" if folder_root(name) is not None else _MODULES[name]
    return importlib.import_module(f"mpl_tf.data.{module}")
