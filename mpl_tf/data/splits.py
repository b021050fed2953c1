"""Which training examples are labeled: a class-balanced subset chosen by a seed."""

import numpy as np

from mpl_tf.config import ConfigError


def labeled_indices(labels, num_labeled, num_classes, seed):
    """Indices of `num_labeled` examples, as even over classes as possible, fixed by `seed`.

    Classes get `num_labeled // num_classes` each and the first `num_labeled % num_classes`
    classes one more; the result is sorted so it is easy to diff across runs.
    """
    labels = np.asarray(labels)
    if num_labeled < num_classes:
        raise ConfigError(f"--num_labeled={num_labeled} is smaller than the number of classes "
                          f"({num_classes}); every class needs a labeled example")
    if num_labeled > len(labels):
        raise ConfigError(f"--num_labeled={num_labeled} is larger than the training set "
                          f"({len(labels)} examples)")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        want = num_labeled // num_classes + (1 if c < num_labeled % num_classes else 0)
        members = np.flatnonzero(labels == c)
        if want > len(members):
            raise ConfigError(f"--num_labeled={num_labeled} needs {want} examples of class {c}, "
                              f"which has only {len(members)}")
        chosen.append(rng.choice(members, size=want, replace=False))
    return np.sort(np.concatenate(chosen))
