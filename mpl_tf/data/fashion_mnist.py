"""`fashion_mnist`: Zalando's Fashion-MNIST, 70,000 28x28 grayscale images of clothing in 10
classes (60,000 training, 10,000 test), read from its four IDX files.

Where the files come from, first found wins:

    --fashion_mnist_dir=DIR       the four files in DIR (an error if one is missing or damaged)
    /usr/share/datasets/fashion-mnist   Debian's `dataset-fashion-mnist` package, when complete
    TFDS `fashion_mnist`          prepared in --data_dir (downloaded the first time)

Each file may be gzipped (`NAME.gz`) or not (`NAME`; preferred when both exist). The files are
checked strictly before anything is trained: the IDX magic number (2051 for images, 2049 for
labels), 28x28 images, a size that is exactly what the header promises (a truncated file or a
truncated gzip stream is caught), labels 0-9, as many labels as images and at most MAX_BYTES
(decompressed); a damaged file is one line (UnreadableInput) naming it and what is wrong.

The labeled subset and the validation holdout (default 5,000) come from the 60,000 training
images with --split_seed (`split_data.from_arrays`), the official 10,000 are the test set.
Images stay uint8 28x28x1 until the views: flip + pad-and-crop (a mirrored garment is the same
garment). Every source gives the same arrays in the same order (TFDS reads the same files).
"""

import gzip
import math
import os
import zlib

import numpy as np

from mpl_tf.errors import ConfigError, UnreadableInput

NAME = "fashion_mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
# split: (images file, labels file), without the optional .gz
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # 0x0803: unsigned bytes, 3 dims; 0x0801: 1 dim
SIZE = 28
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
DEFAULT_NUM_VAL = 5000
# The largest IDX file read (decompressed): 20x the official training images (47 MB), so a
# gzip bomb or a wrong file is refused before it fills the memory.
MAX_BYTES = 1 << 30


def load(config):
    """SplitData of Fashion-MNIST: labeled and validation cut from the training split."""
    from mpl_tf.data import bounds, split_data

    bounds.check_image_size(config, SIZE, "Fashion-MNIST's images")
    train, test = read(config)
    if config.image_size and config.image_size != SIZE:
        train, test = ((split_data.resize(images, config.image_size, dtype=np.uint8), labels)
                       for images, labels in (train, test))
    return split_data.from_arrays(
        NAME, config, train, test, num_classes=len(CLASS_NAMES),
        default_num_val=DEFAULT_NUM_VAL, view="flip_pad_crop", class_names=CLASS_NAMES)


def read(config):
    """((train images, labels), (test images, labels)): uint8 N x 28 x 28 x 1 and int32, from
    the first source there is (see the module's docstring)."""
    if config.fashion_mnist_dir:
        directory = config.fashion_mnist_dir
        if not os.path.isdir(directory):
            raise ConfigError(f"--fashion_mnist_dir={directory} is not a directory")
        return read_directory(directory, f"--fashion_mnist_dir={directory}")
    if all(_find(DEBIAN_DIR, name) for pair in FILES.values() for name in pair):
        return read_directory(DEBIAN_DIR, DEBIAN_DIR)
    return _from_tfds(config)


def read_directory(directory, where):
    """The two splits from the four IDX files in `directory` (`where` names it in errors)."""
    print(f"{NAME}: reading the IDX files in {directory}", flush=True)
    splits = []
    for images_name, labels_name in FILES.values():
        paths = []
        for name in (images_name, labels_name):
            path = _find(directory, name)
            if path is None:
                raise ConfigError(f"{where}: no {name} or {name}.gz there (Fashion-MNIST's four "
                                  f"IDX files: {', '.join(n for p in FILES.values() for n in p)})")
            paths.append(path)
        images, labels = read_images(paths[0]), read_labels(paths[1])
        if len(images) != len(labels):
            raise UnreadableInput(f"{paths[1]} has {len(labels)} labels but {paths[0]} has "
                                  f"{len(images)} images; they must pair up one to one")
        splits.append((images, labels))
    (train, _), (test, _) = splits
    if train.shape == test.shape and np.array_equal(train, test):
        raise UnreadableInput(f"{where}: the test images are the training images (the "
                              f"{FILES['test'][0]} file is a copy of {FILES['train'][0]}); "
                              "the test split must be images of its own, Fashion-MNIST's t10k files")
    return tuple(splits)


def read_images(path):
    """uint8 images N x 28 x 28 x 1 from an IDX image file, checked strictly."""
    images = _read_idx(path, IMAGE_MAGIC, "images")
    if images.shape[1:] != (SIZE, SIZE):
        raise UnreadableInput(f"{path}: images of {images.shape[1]}x{images.shape[2]}, "
                              f"expected Fashion-MNIST's {SIZE}x{SIZE}")
    return images[..., None]


def read_labels(path):
    """int32 labels 0-9 from an IDX label file, checked strictly."""
    labels = _read_idx(path, LABEL_MAGIC, "labels")
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if len(bad):
        raise UnreadableInput(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside "
                              f"0-{len(CLASS_NAMES) - 1} ({len(bad)} such labels)")
    return labels.astype(np.int32)


def _read_idx(path, magic, kind):
    """The array of an unsigned-byte IDX file whose magic number must be `magic`; its size
    must be exactly what the header promises."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise UnreadableInput(f"{path}: truncated: {len(data)} bytes, not even an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise UnreadableInput(f"{path}: magic number {found}, expected {magic} (an IDX file of "
                              f"unsigned-byte {kind})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UnreadableInput(f"{path}: truncated: {len(data)} bytes, its IDX header needs "
                              f"{header}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if not dims[0]:
        raise UnreadableInput(f"{path}: its header says it holds no {kind}")
    expected = header + math.prod(dims)  # Python's ints: a forged header cannot overflow
    shape = "x".join(map(str, dims[1:]))
    promised = f"{dims[0]} {kind}" + (f" of {shape}" if shape else "")
    if len(data) < expected:
        raise UnreadableInput(f"{path}: truncated: its header promises {promised} "
                              f"({expected} bytes), it has {len(data)} bytes")
    if len(data) > expected:
        raise UnreadableInput(f"{path}: {len(data) - expected} bytes more than the {promised} "
                              f"its header promises ({expected} bytes)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read_bytes(path):
    """The file's bytes, decompressed when its name ends in .gz; at most MAX_BYTES of them."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        reason = (str(e).strip().splitlines() or [""])[0]
        raise UnreadableInput(f"{path}: not a complete gzip file ({type(e).__name__}"
                              f"{': ' + reason if reason else ''})") from e
    except OSError as e:
        raise UnreadableInput(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from e
    if len(data) > MAX_BYTES:
        raise UnreadableInput(f"{path}: more than {MAX_BYTES} bytes"
                              f"{' decompressed' if path.endswith('.gz') else ''}, too large "
                              "for a Fashion-MNIST IDX file")
    return data


def _find(directory, name):
    """The path of IDX file `name` in `directory`, uncompressed or gzipped; None if neither."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _from_tfds(config):
    """The two splits from TFDS `fashion_mnist` (downloaded when it is not prepared yet)."""
    from mpl_tf.data import tfds_sources

    try:
        builder = tfds_sources.prepare(NAME, config)
    except ConfigError as e:
        raise ConfigError(f"{e} (or pass the four IDX files with --fashion_mnist_dir=DIR)") from e
    # the in-memory reader the other small TFDS datasets use (no resizing here: load does it)
    return tuple(tfds_sources._arrays(builder, split, 0) for split in ("train", "test"))
