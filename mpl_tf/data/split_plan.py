"""Which training examples are labeled, which are held out for validation, which are unlabeled:
index sets chosen by `--split_seed` alone, so every method and run with that seed sees the same
cut."""

import dataclasses

import numpy as np

from mpl_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sorted indices into the training set: `labeled` and `val` are disjoint; `unlabeled` is
    every other index (and `labeled` too unless --unlabeled_excludes_labeled)."""

    labeled: np.ndarray
    val: np.ndarray
    unlabeled: np.ndarray


def labeled_indices(labels, num_labeled, num_classes, seed, flag=None):
    """Indices of `num_labeled` examples, as even over classes as possible, fixed by `seed`.

    Classes get `num_labeled // num_classes` each and the first `num_labeled % num_classes`
    classes one more; the result is sorted so it is easy to diff across runs. `flag` names the
    flag the count came from in error messages (default `--num_labeled=N`).
    """
    labels = np.asarray(labels)
    flag = flag or f"--num_labeled={num_labeled}"
    if num_labeled < num_classes:
        raise ConfigError(f"{flag} is smaller than the number of classes "
                          f"({num_classes}); every class needs a labeled example")
    if num_labeled > len(labels):
        raise ConfigError(f"{flag} is larger than the training set "
                          f"({len(labels)} examples)")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        want = num_labeled // num_classes + (1 if c < num_labeled % num_classes else 0)
        members = np.flatnonzero(labels == c)
        if want > len(members):
            raise ConfigError(f"{flag} needs {want} labeled examples of class {c}, "
                              f"which has only {len(members)}")
        chosen.append(rng.choice(members, size=want, replace=False))
    return np.sort(np.concatenate(chosen))


def num_labeled(config, train_size):
    """(count, flag text): --label_fraction of the training set when set, else --num_labeled."""
    if config.label_fraction:
        count = int(round(config.label_fraction * train_size))
        return count, f"--label_fraction={config.label_fraction:g} ({count} of {train_size})"
    return config.num_labeled, f"--num_labeled={config.num_labeled}"


def plan(labels, num_classes, config, default_num_val):
    """The labeled subset (class-balanced), then a validation holdout (--num_val, or
    `default_num_val` when it is 0) drawn at random from the rest.

    The labeled subset is chosen first so it does not change with --num_val.
    """
    labels = np.asarray(labels)
    count, flag = num_labeled(config, len(labels))
    labeled = labeled_indices(labels, count, num_classes, config.split_seed, flag)
    num_val = config.num_val or default_num_val
    rest = np.setdiff1d(np.arange(len(labels)), labeled)
    if num_val > len(rest):
        holdout = (f"--num_val={num_val}" if config.num_val  # else name the value used, unset
                   else f"{num_val}: the dataset's default, as --num_val is unset")
        raise ConfigError(f"{flag} plus the validation holdout ({holdout}) need more than the "
                          f"{len(labels)} training examples: at most {len(rest)} can be held out")
    rng = np.random.default_rng([config.split_seed, 1])
    val = np.sort(rng.choice(rest, size=num_val, replace=False))
    unlabeled = np.setdiff1d(np.arange(len(labels)), val)
    if config.unlabeled_excludes_labeled:
        unlabeled = np.setdiff1d(unlabeled, labeled)
    return Plan(labeled=labeled, val=val, unlabeled=unlabeled)


def test_holdout(labels, fraction, seed=0):
    """(train, test) sorted indices: `fraction` of every class goes to test. A fixed seed keeps
    one test set for every --split_seed, so results across split seeds share a yardstick."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:int(round(fraction * len(members)))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test
