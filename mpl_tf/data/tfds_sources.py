"""TFDS sources of small images: cifar10, cifar100, svhn_cropped, stl10, plus the TFDS plumbing
ImageNet shares (preparing a builder with a one-line error, streaming a split).

Training and test splits are read into memory as uint8 (a quarter of float32: CIFAR-10's
60,000 images are 184 MB), resized ones rounded back to uint8. Splits too big for
that stay TFDS streams: STL-10's 100k `unlabelled` images (always in the unlabeled pool) and
SVHN's 531k `extra` images (in the pool only with --extra_unlabeled). The validation holdout
defaults to 5,000 training images (500 for STL-10's 5,000). Pixel statistics: CIFAR-10 uses
the released code's fixed mean/std; the others are computed from the labeled + unlabeled
training images. Views: flip + pad-and-crop; SVHN is not flipped (digits).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from mpl_tf.errors import ConfigError
from mpl_tf.data import bounds
from mpl_tf.data import downloads
from mpl_tf.data import examples as examples_lib
from mpl_tf.data import split_data

CIFAR10_MEAN = tuple(255.0 * m for m in (0.4914, 0.4822, 0.4465))
CIFAR10_STD = tuple(255.0 * s for s in (0.2470, 0.2435, 0.2616))
SHUFFLE_BUFFER = 10_000


@dataclasses.dataclass(frozen=True)
class _Spec:
    default_num_val: int
    view: str
    native_size: int  # the side of its images
    unlabeled_split: str = None  # a split that always joins the unlabeled pool
    extra_split: str = None  # a split that joins it with --extra_unlabeled
    pixel_mean: tuple = None
    pixel_std: tuple = None


SPECS = {
    "cifar10": _Spec(5000, "flip_pad_crop", 32, pixel_mean=CIFAR10_MEAN,
                     pixel_std=CIFAR10_STD),
    "cifar100": _Spec(5000, "flip_pad_crop", 32),
    "svhn_cropped": _Spec(5000, "pad_crop", 32, extra_split="extra"),
    "stl10": _Spec(500, "flip_pad_crop", 96, unlabeled_split="unlabelled"),
}


def has_extra_split(name):
    """Whether --extra_unlabeled adds a split to `name`'s unlabeled pool (SVHN's `extra`)."""
    return SPECS[name].extra_split is not None


def load(config):
    """SplitData for the small-image TFDS dataset `config.dataset`."""
    spec = SPECS[config.dataset]
    bounds.check_image_size(config, spec.native_size, f"--dataset={config.dataset}'s images")
    builder = prepare(config.dataset, config)
    train, test = (_arrays(builder, split, config.image_size) for split in ("train", "test"))
    stream = None
    if spec.unlabeled_split or (spec.extra_split and config.extra_unlabeled):
        stream = split_stream(builder, spec.unlabeled_split or spec.extra_split,
                              size=config.image_size)
    names = builder.info.features["label"].names
    return split_data.from_arrays(
        config.dataset, config, train, test, num_classes=len(names),
        default_num_val=spec.default_num_val, view=spec.view, class_names=names,
        pixel_mean=spec.pixel_mean, pixel_std=spec.pixel_std, extra_unlabeled=stream)


def prepare(name, config, download_config=None):
    """The TFDS builder of `name`, prepared in --data_dir (a no-op once it is), or ConfigError
    naming what failed (e.g. no network to download it: found before TFDS starts, in seconds,
    see `downloads`); a failed preparation leaves no partial files there."""
    import requests
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # its bars go to stderr, where an error must be the only line
    where = (f"--dataset={config.dataset}: TFDS could not prepare {name} in "
             f"--data_dir={config.data_dir or '~/tensorflow_datasets'}")
    try:
        with downloads.quiet_logging():
            builder = tfds.builder(name, data_dir=config.data_dir)
            if not builder.is_prepared():
                print(f"preparing {name} in {builder.data_dir} with TFDS (downloading it the "
                      "first time)", flush=True)
            with (downloads.probing_downloads(),
                  downloads.partial_files_removed(os.fspath(builder.data_dir_root))):
                builder.download_and_prepare(download_config=download_config)
    except downloads.Unreachable as e:
        raise ConfigError(f"{where} (network error, {e}): connect to the network, or copy a "
                          f"prepared {name} into --data_dir") from e
    except Exception as e:  # TFDS reports missing files, network and disk errors many ways
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        network = "network error, " if isinstance(e, requests.RequestException) else ""
        raise ConfigError(f"{where} ({network}{type(e).__name__}: {reason})") from e
    return builder


def num_examples(builder, split):
    """Examples in `split`: from the dataset's metadata, else (mocked data) by counting."""
    import tensorflow_datasets as tfds

    try:
        return builder.info.splits[split].num_examples
    except KeyError:
        skip = {"image": tfds.decode.SkipDecoding()}
        return int(builder.as_dataset(split=split, decoders=skip).reduce(
            np.int64(0), lambda n, _: n + 1))


def split_stream(builder, split, size=0, keep=None, count=None, buffer=SHUFFLE_BUFFER):
    """`Examples` streaming a TFDS split, keyed by still-encoded records: files are sharded per
    input pipeline, `keep(example)` filters, the shuffle buffer (`buffer` records) holds encoded
    images, and `load` decodes, resizing fixed-size images to `size` x `size` when set."""
    import tensorflow_datasets as tfds

    feature = builder.info.features["image"]
    shape = tuple(feature.shape)
    if size and shape[0] is not None:
        shape = (size, size, shape[2])

    def read(num_shards, shard, seed):
        context = tf.distribute.InputContext(num_shards, shard) if num_shards > 1 else None
        config = tfds.ReadConfig(shuffle_seed=seed, input_context=context, try_autocache=False)
        ds = builder.as_dataset(split=split, shuffle_files=seed is not None, read_config=config,
                                decoders={"image": tfds.decode.SkipDecoding()})
        if keep is not None:
            ds = ds.filter(keep)
        ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
        return ds.shuffle(buffer, seed=seed) if seed is not None else ds

    def load(key):
        return _decode(feature, key["image"], shape), key["label"]

    return examples_lib.Examples(count or num_examples(builder, split), shape, read, load)


def _decode(feature, encoded, shape):
    """Decodes an image, declaring its channels (decoding does not), resized to `shape` when
    that is fixed (and rounded back to uint8, as the in-memory splits are)."""
    image = tf.ensure_shape(feature.decode_example(encoded), (None, None, shape[2]))
    if shape[0] is not None and image.shape[0] != shape[0]:
        resized = tf.image.resize(image, shape[:2], antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
    return image if shape[0] is None else tf.ensure_shape(image, shape)


def _arrays(builder, split, size):
    """(images uint8, labels int32) of a whole split, resized when `size` is set."""
    import tensorflow_datasets as tfds

    images, labels = [], []
    for batch in tfds.as_numpy(builder.as_dataset(split=split, batch_size=4096,
                                                  as_supervised=True, shuffle_files=False)):
        images.append(batch[0])
        labels.append(batch[1].astype(np.int32))
    images = np.concatenate(images)
    if size and size != images.shape[1]:
        images = split_data.resize(images, size, dtype=np.uint8)
    return images, np.concatenate(labels)
