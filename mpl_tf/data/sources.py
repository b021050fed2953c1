"""Data sources behind `--dataset`: each returns a `SplitData` of numpy arrays, read before any
TensorFlow work so bad data fails fast."""

import dataclasses

import numpy as np

from mpl_tf.config import ConfigError
from mpl_tf.data import splits

DATASETS = ("two_moons",)


@dataclasses.dataclass(frozen=True)
class SplitData:
    """A dataset cut for semi-supervised training.

    `unlabeled_labels` are the hidden labels of the unlabeled pool (-1 where unknown): they feed
    the pseudo-label accuracy metric and never a loss. `view` names the augmentation family.
    Images are float32 pixels on the 0-255 scale; `pixel_mean`/`pixel_std` (per channel, same
    scale) are applied inside the networks, and are None for non-image data.
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

    def info(self):
        """What exporters and evaluators need to rebuild the serving network's input side."""
        return {"name": self.name, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape),
                "class_names": list(self.class_names) or [str(c) for c in
                                                          range(self.num_classes)],
                "pixel_mean": self.pixel_mean and list(self.pixel_mean),
                "pixel_std": self.pixel_std and list(self.pixel_std), "view": self.view}


def load(config):
    """The `SplitData` that `config.dataset` names, with the labeled subset from `split_seed`."""
    if config.dataset == "two_moons":
        return two_moons(config.num_labeled, config.split_seed)
    raise ConfigError(f"--dataset={config.dataset} is not valid; valid values: "
                      f"{', '.join(DATASETS)}")


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
