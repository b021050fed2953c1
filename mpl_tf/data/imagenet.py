"""ImageNet-2012 as TFDS streams (1.28M training images cannot live in memory).

`imagenet` (the owner's alias) with --label_fraction=0.1 / 0.01 takes the standard label subsets
(TFDS `imagenet2012_subset/10pct` / `1pct`, SimCLR's file lists); any other fraction, any
--num_labeled, and `imagenet2012` take a class-balanced sample chosen by --split_seed, which
reads the training records' labels once before training and then filters the training split
for labeled batches. The unlabeled pool is all of ImageNet's training images; the test split
is ImageNet's validation split.

Validation holdout (--num_val, default 10,000): training images whose file name hashes
(keyed by --split_seed) into the first num_val / (train - labeled) of the buckets, never a
labeled one, so its size is num_val on average rather than exactly. It leaves the unlabeled
pool. Pixel statistics are the usual ImageNet mean/std; the view is the random-resized crop
to --image_size (default 224); evaluation centre-crops (crop = size / (size + 32) of the
shorter side, as the released code) and resizes.
"""

import os

import numpy as np
import tensorflow as tf

from mpl_tf.errors import ConfigError
from mpl_tf.data import split_plan
from mpl_tf.data import tfds_sources
from mpl_tf.data.split_data import SplitData

MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
STANDARD_SUBSETS = {0.1: "imagenet2012_subset/10pct", 0.01: "imagenet2012_subset/1pct"}
DEFAULT_NUM_VAL = 10_000
DEFAULT_SIZE = 224
MEAN = tuple(255.0 * m for m in (0.485, 0.456, 0.406))
STD = tuple(255.0 * s for s in (0.229, 0.224, 0.225))
HASH_BUCKETS = 1_000_000
# Decoded ImageNet images average ~500 KB: a smaller shuffle buffer than for 32 px images.
SHUFFLE_BUFFER = 2_048


def load(config):
    """SplitData of TFDS streams for `imagenet` / `imagenet2012`."""
    subset = STANDARD_SUBSETS.get(config.label_fraction) if config.dataset == "imagenet" else None
    full = _prepare("imagenet2012", config)
    labeled_source = _prepare(subset, config) if subset else full
    size = config.image_size or DEFAULT_SIZE
    labeled_names, labeled_labels, labeled_indices = _labeled(labeled_source, subset, config)
    is_labeled = _membership(labeled_names)
    num_train = tfds_sources.num_examples(full, "train")
    num_val = config.num_val or DEFAULT_NUM_VAL
    if num_val >= num_train - len(labeled_names):
        raise ConfigError(f"--num_val={num_val} leaves no unlabeled ImageNet training images "
                          f"({num_train} in all, {len(labeled_names)} labeled)")
    threshold = int(HASH_BUCKETS * num_val / (num_train - len(labeled_names)))

    def in_val(ex):
        bucket = tf.strings.to_hash_bucket_strong(ex["file_name"], HASH_BUCKETS,
                                                  key=[config.split_seed, 7])
        return tf.logical_and(bucket < threshold, tf.logical_not(is_labeled(ex)))

    def in_unlabeled(ex):
        keep = tf.logical_not(in_val(ex))
        if config.unlabeled_excludes_labeled:
            keep = tf.logical_and(keep, tf.logical_not(is_labeled(ex)))
        return keep

    def stream(builder, split, keep=None, count=None):
        return tfds_sources.split_stream(builder, split, keep=keep, count=count,
                                         buffer=SHUFFLE_BUFFER)

    labeled = stream(labeled_source, "train", keep=None if subset else is_labeled,
                     count=len(labeled_names))
    num_unlabeled = num_train - num_val - (
        len(labeled_names) if config.unlabeled_excludes_labeled else 0)
    names = full.info.features["label"].names
    return SplitData(
        name=config.dataset, num_classes=len(names), input_shape=(size, size, 3),
        labeled_images=None, labeled_labels=labeled_labels, labeled_indices=labeled_indices,
        unlabeled_images=None, unlabeled_labels=None, val_images=None, val_labels=None,
        test_images=None, test_labels=None, view="resized_crop", class_names=tuple(names),
        pixel_mean=MEAN, pixel_std=STD, labeled_ids=tuple(labeled_names),
        streams={"labeled": labeled,
                 "unlabeled": stream(full, "train", keep=in_unlabeled, count=num_unlabeled),
                 "val": stream(full, "train", keep=in_val, count=num_val),
                 "test": stream(full, "validation")})


def _prepare(name, config):
    """The builder, prepared; before a (multi-hour) build, the manual tars must be there."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=config.data_dir)
    if builder.is_prepared():
        return builder
    manual_dir = config.manual_dir or ""
    missing = [f for f in MANUAL_FILES if not os.path.isfile(os.path.join(manual_dir, f))]
    if missing:
        raise ConfigError(
            f"--dataset={config.dataset} needs {name} prepared by TFDS in --data_dir="
            f"{config.data_dir or '~/tensorflow_datasets'} or the ImageNet tars "
            f"{' and '.join(MANUAL_FILES)} in --manual_dir ("
            f"{'--manual_dir=' + manual_dir if manual_dir else '--manual_dir is not set'}; "
            f"missing: {', '.join(missing)})")
    return tfds_sources.prepare(name, config, tfds.download.DownloadConfig(
        manual_dir=config.manual_dir))


def _labeled(source, subset, config):
    """(file names, labels, indices) of the labeled images: the whole standard subset, or a
    class-balanced sample of the training split (indices in its fixed read order)."""
    names, labels = _names_and_labels(source)
    if subset:
        return names, labels, np.arange(len(names))
    count, flag = split_plan.num_labeled(config, len(labels))
    chosen = split_plan.labeled_indices(labels, count, 1000, config.split_seed, flag)
    return [names[i] for i in chosen], labels[chosen], chosen


def _names_and_labels(builder):
    """File names and labels of the training split, without decoding any image."""
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split="train", shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
    ds = ds.map(lambda ex: (ex["file_name"], ex["label"])).batch(65536)
    names, labels = [], []
    for batch_names, batch_labels in tfds.as_numpy(ds):
        names += [n.decode() for n in batch_names]
        labels.append(batch_labels.astype(np.int32))
    return names, np.concatenate(labels)


def _membership(names):
    """A tf predicate: is the example's file name one of `names`?"""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(names, tf.string),
                                            tf.ones(len(names), tf.int32)), default_value=0)
    return lambda ex: table.lookup(ex["file_name"]) > 0
