"""`two_moons`: the paper's toy problem, arrays of 2-d points (its views add Gaussian noise)."""

import numpy as np

from mpl_tf.data import split_plan
from mpl_tf.data.split_data import SplitData


def load(config):
    return make(config.num_labeled, config.split_seed)


def make(num_labeled, split_seed, num_points=2000, num_val=500):
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
    chosen = split_plan.labeled_indices(labels, num_labeled, 2, split_seed)
    return SplitData(
        name="two_moons", num_classes=2, input_shape=(2,),
        labeled_images=points[chosen], labeled_labels=labels[chosen], labeled_indices=chosen,
        unlabeled_images=points, unlabeled_labels=labels,
        val_images=val_points, val_labels=val_labels,
        test_images=points, test_labels=labels, view="gaussian_noise",
        class_names=("upper moon", "lower moon"))
