"""`folder:PATH`: your own images, read into memory with Pillow before training, so an
unreadable file fails the run up front (naming the file) instead of hours into it.

Layout (extensions .jpg, .jpeg, .png, any case):
    PATH/labeled/<class>/...      labeled training images; class = directory name (>= 2 classes)
    PATH/unlabeled/**             optional unlabeled images, any depth, no labels
    PATH/test/<class>/...         optional test set; without it a fixed (seed 0) stratified 20%
                                  of labeled/ is held out as test
Images become RGB. With --image_size=S each is resized (shorter side to S) and centre-cropped to
SxS; with 0 all must share one size. The validation holdout defaults to 10% of the labeled
training images; pixel mean/std are computed from the labeled + unlabeled training images.
Views: flip + pad-and-crop below 128 px, random-resized crop from 128 px up.
Folders must fit in memory; export bigger ones as a TFDS dataset.
"""

import os

import numpy as np
from absl import logging

from mpl_tf.config import ConfigError
from mpl_tf.data import split_data
from mpl_tf.data import splits

EXTENSIONS = (".jpg", ".jpeg", ".png")
TEST_FRACTION = 0.2
RESIZED_CROP_FROM = 128


def load(config, root):
    """SplitData for the folder `root` (the part of --dataset after `folder:`)."""
    where = f"--dataset=folder:{root}"
    if not os.path.isdir(root):
        raise ConfigError(f"{where}: {root} is not a directory; expected "
                          f"{os.path.join(root, 'labeled', '<class>', '*.png')} (or .jpg/.jpeg)")
    classes, files, labels = _class_files(os.path.join(root, "labeled"), where, classes=None)
    if len(classes) < 2:
        raise ConfigError(f"{where}: needs at least 2 classes in "
                          f"{os.path.join(root, 'labeled')}/<class>/ (found {len(classes)}: "
                          f"{', '.join(classes) or 'none'})")
    reader = _Reader(root, config, where)
    images, labels, files = reader.read(files, labels)
    if os.path.isdir(os.path.join(root, "test")):
        _, test_files, test_labels = _class_files(os.path.join(root, "test"), where, classes)
        test_images, test_labels, _ = reader.read(test_files, test_labels)
        train = (images, labels)
    else:
        train_idx, test_idx = splits.test_holdout(labels, TEST_FRACTION)
        test_images, test_labels = images[test_idx], labels[test_idx]
        train, files = (images[train_idx], labels[train_idx]), [files[i] for i in train_idx]
    extra = None
    unlabeled_files = _image_files(os.path.join(root, "unlabeled"))
    if unlabeled_files:
        extra_images, extra_labels, _ = reader.read(
            unlabeled_files, np.full(len(unlabeled_files), -1, np.int32))
        extra = (extra_images, extra_labels)
    size = train[0].shape[1]
    return split_data.from_arrays(
        f"folder:{root}", config, train, (test_images, test_labels), num_classes=len(classes),
        default_num_val=max(1, len(train[1]) // 10),
        view="resized_crop" if size >= RESIZED_CROP_FROM else "flip_pad_crop",
        class_names=classes, train_ids=[os.path.relpath(f, root) for f in files],
        extra_unlabeled=extra)


def _image_files(directory):
    """Image paths under `directory` at any depth, sorted (so indices are stable)."""
    found = []
    for parent, _, names in os.walk(directory):
        found += [os.path.join(parent, n) for n in names if n.lower().endswith(EXTENSIONS)]
    return sorted(found)


def _class_files(directory, where, classes):
    """(class names, files, labels) of directory/<class>/...; `classes` fixes the names (for
    test/, which must use labeled/'s classes), else every subdirectory with images is one."""
    found = {}
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            images = _image_files(os.path.join(directory, name))
            if os.path.isdir(os.path.join(directory, name)) and images:
                found[name] = images
    if not found:
        raise ConfigError(f"{where}: no images in {directory}/<class>/ (extensions "
                          f"{', '.join(EXTENSIONS)})")
    if classes is None:
        classes = tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ConfigError(f"{where}: {directory} has classes not in labeled/: "
                          f"{', '.join(unknown)}; valid: {', '.join(classes)}")
    files = [f for c in classes for f in found.get(c, [])]
    labels = [i for i, c in enumerate(classes) for _ in found.get(c, [])]
    return classes, files, np.asarray(labels, np.int32)


class _Reader:
    """Decodes files to float32 HWC RGB arrays of one size, failing (or, with
    --skip_corrupt_images, warning and skipping) on unreadable files."""

    def __init__(self, root, config, where):
        self.root, self.size, self.where = root, config.image_size, where
        self.skip = config.skip_corrupt_images
        self.first = None  # (path, (height, width)) that fixes the size when --image_size=0

    def read(self, files, labels):
        """(images, labels, files) for the readable files among `files`."""
        images, kept = [], []
        for i, path in enumerate(files):
            image = self._decode(path)
            if image is not None:
                images.append(image)
                kept.append(i)
        if not images:
            raise ConfigError(f"{self.where}: none of the {len(files)} images under "
                              f"{os.path.dirname(files[0])} could be read")
        return (np.stack(images).astype(np.float32), np.asarray(labels, np.int32)[kept],
                [files[i] for i in kept])

    def _decode(self, path):
        from PIL import Image, ImageOps

        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except Exception as e:  # Pillow raises many types for bad files
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if not self.skip:
                raise ConfigError(f"{self.where}: cannot read image {path} ({reason}); fix or "
                                  "remove it, or pass --skip_corrupt_images to skip such files")
            logging.warning("skipping unreadable image %s (%s)", path, reason)
            return None
        if self.size:
            image = ImageOps.fit(image, (self.size, self.size), Image.BILINEAR)
        elif self.first is None:
            self.first = (path, image.size)
        elif image.size != self.first[1]:
            raise ConfigError(
                f"{self.where}: images differ in size ({self.first[0]} is "
                f"{self.first[1][0]}x{self.first[1][1]}, {path} is "
                f"{image.size[0]}x{image.size[1]}); set --image_size to resize them")
        return np.asarray(image)
