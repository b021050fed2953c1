"""`folder:PATH`: your own images, streamed from their files by tf.data, so memory does not grow
with the number of images (a few numbers per file are kept, never its pixels).

Layout (extensions .jpg, .jpeg, .png, any case):
    PATH/labeled/<class>/...      labeled training images; class = directory name (>= 2 classes)
    PATH/unlabeled/**             optional unlabeled images, any depth, no labels
    PATH/test/<class>/...         optional test set; without it a fixed (seed 0) stratified 20%
                                  of labeled/ is held out as test
Before training, a one-time scan (scan.py) lists the files in parallel and decodes each
once, so an unreadable file fails the run up front (the first few named, with the count) or,
with --skip_corrupt_images, is left out (counted in dataset_info.json). Images become RGB
(grayscale, alpha, palette, CMYK and 16-bit converted), are turned upright by their EXIF
orientation, and with --image_size=S have their central square resized to SxS; with 0 all must
share one size. Files are indexed in sorted order, class by class, so the split is the one the
in-memory version of this module chose for the same seed: the validation holdout defaults to
10% of the labeled training images, and pixel mean/std are computed from the labeled +
unlabeled training images. Views: flip + pad-and-crop below 128 px, random-resized crop from
128 px up. --cache_dir keeps the decoded images for the next run on the unchanged folder.
"""

import concurrent.futures
import dataclasses
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from mpl_tf.errors import ConfigError, UnreadableInput
from mpl_tf.data import bounds
from mpl_tf.data.folder import decode
from mpl_tf.data import examples as examples_lib
from mpl_tf.data.folder import scan
from mpl_tf.data import sources
from mpl_tf.data import split_plan
from mpl_tf.data.split_data import SplitData

TEST_FRACTION = 0.2
RESIZED_CROP_FROM = 128
NAMED_BAD_FILES = 3


@dataclasses.dataclass(frozen=True)
class FolderPlan:
    """A scanned folder and its split: `paths` (absolute) index every file found; `labels`
    are their classes (-1 in unlabeled/); `splits` maps labeled, unlabeled, val and test to
    indices into `paths`; `train` indexes the training set in the order `labeled_indices`
    and `val_indices` refer to."""

    root: str
    classes: tuple
    paths: list
    labels: np.ndarray
    scan: scan.Scan
    image_shape: tuple
    train: np.ndarray
    plan: split_plan.Plan
    splits: dict
    skipped: int

    def ids(self, split):
        """The files of `split`, relative to the folder, in stream order."""
        return [os.path.relpath(self.paths[i], self.root) for i in self.splits[split]]


def load(config):
    """SplitData for the folder --dataset=folder:ROOT names."""
    root = sources.folder_root(config.dataset)
    cut = plan(config, root)
    scan, size = cut.scan, config.image_size
    load_file = scan.loader(cut.paths, size)
    training = np.concatenate([cut.train[np.union1d(cut.plan.labeled, cut.plan.unlabeled)],
                               cut.splits["unlabeled"][cut.labels[cut.splits["unlabeled"]] < 0]])
    pixel_mean, pixel_std = scan.pixel_stats(training)
    streams = {name: _examples(indices, cut.labels, load_file, cut.image_shape)
               for name, indices in cut.splits.items()}
    train_labels = cut.labels[cut.train]
    return SplitData(
        name=sources.folder_dataset(root), num_classes=len(cut.classes),
        input_shape=cut.image_shape, labeled_images=None, labeled_labels=train_labels[cut.plan.labeled],
        labeled_indices=cut.plan.labeled, unlabeled_images=None, unlabeled_labels=None,
        val_images=None, val_labels=None, test_images=None, test_labels=None,
        view="resized_crop" if cut.image_shape[0] >= RESIZED_CROP_FROM else "flip_pad_crop",
        class_names=cut.classes, pixel_mean=pixel_mean, pixel_std=pixel_std,
        val_indices=cut.plan.val, labeled_ids=tuple(cut.ids("labeled")),
        val_ids=tuple(cut.ids("val")), streams=streams, skipped_images=cut.skipped)


def plan(config, root):
    """Lists and scans the folder and cuts it: the `FolderPlan` that `load` streams."""
    where = f"--dataset={sources.folder_dataset(root)}"
    classes, parts, paths, labels = listing(root, where)
    start = time.time()
    scanned = scan.scan(root, paths, config.image_size, config.cache_dir, check_side=lambda side:
                        bounds.check_image_size(config, side, f"the largest image of {where}"))
    print(f"Scanned {len(paths)} images of {where} in {time.time() - start:.1f} s"
          f"{' (cache: ' + scanned.cache + ')' if scanned.cache else ''}", flush=True)
    skipped = check_readable(scanned, paths, config, where)
    for part, indices in parts.items():
        if len(indices) and not scanned.readable[indices].any():
            raise UnreadableInput(f"{where}: none of the {len(indices)} images under "
                                  f"{os.path.join(root, part)} could be read")
    labeled_idx, test_idx, extra_idx = (parts[p][scanned.readable[parts[p]]]
                                        for p in ("labeled", "test", "unlabeled"))
    if not len(parts["test"]):
        train_part, test_part = split_plan.test_holdout(labels[labeled_idx], TEST_FRACTION)
        labeled_idx, test_idx = labeled_idx[train_part], labeled_idx[test_part]
    train = labeled_idx
    cut = split_plan.plan(labels[train], len(classes), config, max(1, len(train) // 10))
    return FolderPlan(
        root=root, classes=classes, paths=paths, labels=labels, scan=scanned,
        image_shape=_image_shape(scanned, paths, config.image_size, where), train=train, plan=cut,
        splits={"labeled": train[cut.labeled],
                "unlabeled": np.concatenate([train[cut.unlabeled], extra_idx]),
                "val": train[cut.val], "test": test_idx},
        skipped=skipped)


def listing(root, where):
    """(classes, parts, paths, labels): every image file of the folder (absolute, sorted class
    by class), its label (-1 in unlabeled/), and `parts` mapping labeled, test and unlabeled to
    their indices into `paths` (test empty without test/)."""
    if not os.path.isdir(root):
        raise ConfigError(f"{where}: {root} is not a directory; expected "
                          f"{os.path.join(root, 'labeled', '<class>', '*.png')} (or .jpg/.jpeg)")
    classes, labeled, labeled_labels = _class_files(os.path.join(root, "labeled"), where, None)
    if len(classes) < 2:
        raise ConfigError(f"{where}: needs at least 2 classes in "
                          f"{os.path.join(root, 'labeled')}/<class>/ (found {len(classes)}: "
                          f"{', '.join(classes) or 'none'})")
    test, test_labels = [], np.zeros(0, np.int32)
    if os.path.isdir(os.path.join(root, "test")):
        _, test, test_labels = _class_files(os.path.join(root, "test"), where, classes)
    unlabeled = _image_files(os.path.join(root, "unlabeled"))
    labels = np.concatenate([labeled_labels, test_labels,
                             np.full(len(unlabeled), -1, np.int32)]).astype(np.int32)
    bounds = np.cumsum([0, len(labeled), len(test), len(unlabeled)])
    parts = {part: np.arange(bounds[i], bounds[i + 1])
             for i, part in enumerate(("labeled", "test", "unlabeled"))}
    return classes, parts, labeled + test + unlabeled, labels


def _examples(indices, labels, load_file, shape):
    """Examples streaming the files `indices` (into the plan's paths) and their labels."""
    indices, labels = tf.constant(indices, tf.int64), tf.constant(labels[indices], tf.int32)

    def load(key):
        image = tf.ensure_shape(load_file(tf.gather(indices, key)), shape)
        return image, tf.gather(labels, key)

    return examples_lib.indexed(int(indices.shape[0]), shape, load)


def check_readable(scan, paths, config, where):
    """The number of unreadable files: 0, or with --skip_corrupt_images their count (after a
    warning); else UnreadableInput naming the first few."""
    bad = np.flatnonzero(~scan.readable)
    if not len(bad):
        return 0
    named = "; ".join(f"{paths[i]} ({decode.error_message(paths[i])})"
                      for i in bad[:NAMED_BAD_FILES])
    more = f"; and {len(bad) - NAMED_BAD_FILES} more" if len(bad) > NAMED_BAD_FILES else ""
    what = f"{len(bad)} of {len(paths)} images are unreadable ({named}{more})"
    if not config.skip_corrupt_images:
        raise UnreadableInput(f"{where}: {what}; fix or remove them, or pass "
                          "--skip_corrupt_images to skip them")
    logging.warning("%s: skipping them (--skip_corrupt_images): %s", where, what)
    return len(bad)


def _image_shape(scan, paths, size, where):
    """(size, size, 3), or with --image_size=0 the one size every readable image has."""
    if size:
        return (size, size, 3)
    readable = np.flatnonzero(scan.readable)
    first, shapes = readable[0], scan.shapes[readable]
    other = readable[np.flatnonzero(np.any(shapes != shapes[0], axis=1))]
    if len(other):
        (h0, w0), (h1, w1) = scan.shapes[first], scan.shapes[other[0]]
        raise ConfigError(f"{where}: images differ in size ({paths[first]} is {w0}x{h0}, "
                          f"{paths[other[0]]} is {w1}x{h1}); set --image_size to resize them")
    return (int(shapes[0][0]), int(shapes[0][1]), 3)


def _image_files(directory):
    """Image paths under `directory` at any depth, sorted (so indices are stable)."""
    found = []
    for parent, _, names in os.walk(directory):
        found += [os.path.join(parent, n) for n in names if n.lower().endswith(decode.EXTENSIONS)]
    return sorted(found)


def _class_files(directory, where, classes):
    """(class names, files, labels) of directory/<class>/...; `classes` fixes the names (for
    test/, which must use labeled/'s classes), else every subdirectory with images is one.
    Class directories are listed in parallel threads (the listing is system calls)."""
    names = sorted(n for n in (os.listdir(directory) if os.path.isdir(directory) else ())
                   if os.path.isdir(os.path.join(directory, n)))
    with concurrent.futures.ThreadPoolExecutor(min(32, 4 * (os.cpu_count() or 1))) as pool:
        listed = pool.map(_image_files, [os.path.join(directory, n) for n in names])
        found = {name: images for name, images in zip(names, listed) if images}
    if not found:
        raise ConfigError(f"{where}: no images in {directory}/<class>/ (extensions "
                          f"{', '.join(decode.EXTENSIONS)})")
    if classes is None:
        classes = tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ConfigError(f"{where}: {directory} has classes not in labeled/: "
                          f"{', '.join(unknown)}; valid: {', '.join(classes)}")
    files = [f for c in classes for f in found.get(c, [])]
    labels = [i for i, c in enumerate(classes) for _ in found.get(c, [])]
    return classes, files, np.asarray(labels, np.int32)
