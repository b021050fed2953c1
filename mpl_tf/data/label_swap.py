"""`--swap_label_pairs=A-B,C-D`: the labeled training set with the labels of class pairs swapped
(every A becomes B and every B becomes A), so a network trained on it is wrong on those classes
in a known way: the teacher of the feedback test (benchmarks/fashion_mnist_feedback_test.py),
which only the feedback can then put right.

Only the labels the run trains on change (the labeled subset, so finetuning too); the validation
and test labels and the unlabeled pool's hidden labels stay true, so every accuracy is measured
against the truth. Parsing imports nothing heavy: the flags are checked before TensorFlow is
imported, the class indices against the dataset once it is loaded.
"""

import dataclasses
import re

import numpy as np

from mpl_tf.errors import ConfigError

_PAIR = re.compile(r"^([0-9]+)-([0-9]+)$")


def parse(text, name="swap_label_pairs"):
    """((a, b), ...) from "a-b,c-d"; () for None or ""; ConfigError unless every pair is two
    different classes and no class is in two pairs. `name` is the flag the errors name (the
    feedback test takes the pairs as its own --swap)."""
    if not text:
        return ()
    flag = f"--{name}={text}"
    pairs, seen = [], set()
    for part in text.split(","):
        match = _PAIR.match(part.strip())
        if not match:
            raise ConfigError(f"{flag} must be comma-separated class pairs like 0-6,2-4 "
                              f"(got {part.strip()!r})")
        a, b = int(match.group(1)), int(match.group(2))
        if a == b:
            raise ConfigError(f"{flag}: {a}-{b} swaps a class with itself")
        repeated = {a, b} & seen
        if repeated:
            raise ConfigError(f"{flag}: class {min(repeated)} is in two pairs")
        seen |= {a, b}
        pairs.append((a, b))
    return tuple(pairs)


def mapping(pairs, num_classes):
    """The label permutation (an int32 array over the classes) the pairs make."""
    table = np.arange(num_classes, dtype=np.int32)
    for a, b in pairs:
        table[a], table[b] = b, a
    return table


def check_classes(pairs, num_classes, dataset, flag):
    """Raises ConfigError unless every class of `pairs` is one of `dataset`'s `num_classes`;
    apart from `apply`, so a caller that knows the count can check before loading anything."""
    largest = max((max(pair) for pair in pairs), default=-1)
    if largest >= num_classes:
        raise ConfigError(f"{flag}: class {largest} does not exist (--dataset={dataset} "
                          f"has classes 0-{num_classes - 1})")


def apply(config, data):
    """`data` (SplitData) with its labeled labels swapped as --swap_label_pairs says."""
    pairs = parse(getattr(config, "swap_label_pairs", None))
    if not pairs:
        return data
    flag = f"--swap_label_pairs={config.swap_label_pairs}"
    check_classes(pairs, data.num_classes, config.dataset, flag)
    if data.labeled_images is None or (data.streams and "labeled" in data.streams):
        raise ConfigError(f"{flag} needs a labeled set held in memory; --dataset="
                          f"{config.dataset} streams it")
    table = mapping(pairs, data.num_classes)
    return dataclasses.replace(data, labeled_labels=table[data.labeled_labels])
