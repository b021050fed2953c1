"""--dataset=fashion_mnist on tiny IDX files the tests write (60 training, 20 test images): the
arrays, the split semantics every dataset shares, the order of the sources (a named folder,
Debian's directory, TFDS), every kind of damaged file as one line naming it, and a short run of
the command."""

import gzip
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from command_testing import main_in_process
from mpl_tf import cli
from mpl_tf.config import Config
from mpl_tf.data import fashion_mnist, sources
from mpl_tf.errors import ConfigError, UnreadableInput
from test_data_sources import check_arrays, check_disjoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, TEST = 60, 20  # 6 and 2 per class


def idx_bytes(array, magic):
    """An unsigned-byte IDX file holding `array`, its header saying `magic`."""
    header = [magic, *array.shape]
    return b"".join(int(n).to_bytes(4, "big") for n in header) + array.astype(np.uint8).tobytes()


def fake_split(count, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    images[:, :4, :4] = labels[:, None, None] * 20  # a label you can see, for the CNN run
    return images, labels


def write_idx_files(directory, gz=True, train=TRAIN, test=TEST):
    """Writes the four files (gzipped or not) into `directory`; returns the arrays written."""
    os.makedirs(directory, exist_ok=True)
    arrays = {"train": fake_split(train, 0), "test": fake_split(test, 1)}
    for split, (images_name, labels_name) in fashion_mnist.FILES.items():
        images, labels = arrays[split]
        for name, data in ((images_name, idx_bytes(images, fashion_mnist.IMAGE_MAGIC)),
                           (labels_name, idx_bytes(labels, fashion_mnist.LABEL_MAGIC))):
            path = os.path.join(directory, name + (".gz" if gz else ""))
            with open(path, "wb") as f:
                f.write(gzip.compress(data) if gz else data)
    return arrays


@pytest.fixture
def idx_dir(tmp_path):
    directory = str(tmp_path / "fashion")
    return directory, write_idx_files(directory)


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Debian's directory is absent, whatever this machine has installed."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "no_debian"))


def config(directory, **changes):
    return Config(dataset="fashion_mnist", fashion_mnist_dir=directory, num_labeled=20,
                  num_val=10).replace(**changes).validate()


def test_arrays_and_the_split_semantics(idx_dir):
    directory, written = idx_dir
    data = sources.load(config(directory))
    check_arrays(data, channels=1)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert data.view == "flip_pad_crop" and data.class_names[0] == "T-shirt/top"
    assert np.all(np.bincount(data.labeled_labels, minlength=10) == 2)
    assert len(data.val_labels) == 10 and len(data.unlabeled_labels) == TRAIN - 10
    check_disjoint(data)
    train_images, train_labels = written["train"]
    assert np.array_equal(data.labeled_images[..., 0], train_images[data.labeled_indices])
    assert np.array_equal(data.labeled_labels, train_labels[data.labeled_indices])
    assert np.array_equal(data.val_images[..., 0], train_images[data.val_indices])
    assert np.array_equal(data.test_images[..., 0], written["test"][0])  # the official order
    assert np.array_equal(data.test_labels, written["test"][1])
    training = np.setdiff1d(np.arange(TRAIN), data.val_indices)  # never validation or test
    assert data.pixel_mean[0] == pytest.approx(np.mean(train_images[training]), rel=1e-6)


def test_the_cut_is_fixed_by_the_split_seed(idx_dir):
    directory, _ = idx_dir
    data, again = sources.load(config(directory)), sources.load(config(directory))
    other = sources.load(config(directory, split_seed=1))
    assert np.array_equal(data.labeled_indices, again.labeled_indices)
    assert np.array_equal(data.val_indices, again.val_indices)
    assert not np.array_equal(data.labeled_indices, other.labeled_indices)
    assert np.array_equal(data.test_images, other.test_images)


def test_plain_and_gzipped_files_read_the_same(tmp_path, idx_dir):
    directory, _ = idx_dir
    plain = str(tmp_path / "plain")
    write_idx_files(plain, gz=False)
    os.remove(os.path.join(plain, "t10k-labels-idx1-ubyte"))  # one file gzipped, from elsewhere
    os.link(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"),
            os.path.join(plain, "t10k-labels-idx1-ubyte.gz"))
    a, b = sources.load(config(directory)), sources.load(config(plain))
    for split in ("labeled", "val", "unlabeled", "test"):
        assert np.array_equal(getattr(a, f"{split}_images"), getattr(b, f"{split}_images"))
        assert np.array_equal(getattr(a, f"{split}_labels"), getattr(b, f"{split}_labels"))


def test_image_size_resizes_to_uint8(idx_dir):
    data = sources.load(config(idx_dir[0], image_size=32))
    check_arrays(data, channels=1)
    assert data.input_shape == (32, 32, 1)


def test_debian_directory_then_tfds(idx_dir, monkeypatch, tmp_path):
    directory, written = idx_dir
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", directory)
    data = sources.load(config(None))
    assert np.array_equal(data.test_images[..., 0], written["test"][0])
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "absent"))
    with tfds.testing.mock_data(num_examples=100):
        data = sources.load(config(None, data_dir=str(tmp_path / "tfds")))
    check_arrays(data, channels=1)
    assert data.input_shape == (28, 28, 1) and len(data.test_labels) == 100
    assert len(data.val_labels) == 10 and len(data.labeled_labels) == 20


def test_offline_tfds_fails_in_one_line(no_debian, no_network, tmp_path, capfd):
    with pytest.raises(ConfigError) as error:
        sources.load(config(None, data_dir=str(tmp_path / "tfds")))
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        "--dataset=fashion_mnist: TFDS could not prepare fashion_mnist")
    assert "network error" in message and message.endswith("--fashion_mnist_dir=DIR)")
    assert capfd.readouterr().err == ""


def _rewrite(path, change):
    """Replaces the file at `path` (gzipped) with `change(its uncompressed bytes)`, gzipped."""
    with open(path, "rb") as f:
        data = gzip.decompress(f.read())
    with open(path, "wb") as f:
        f.write(gzip.compress(change(data)))


def _relabel(data, index, value):
    data = bytearray(data)
    data[8 + index] = value
    return bytes(data)


# (file, how it is damaged, what the line says)
DAMAGE = [
    ("train-images-idx3-ubyte.gz", lambda d: (2049).to_bytes(4, "big") + d[4:],
     "magic number 2049, expected 2051 (an IDX file of unsigned-byte images)"),
    ("t10k-labels-idx1-ubyte.gz", lambda d: (2051).to_bytes(4, "big") + d[4:],
     "magic number 2051, expected 2049 (an IDX file of unsigned-byte labels)"),
    ("train-images-idx3-ubyte.gz", lambda d: d[:-100], "truncated: its header promises 60 "
     "images of 28x28 (47056 bytes), it has 46956 bytes"),
    ("t10k-images-idx3-ubyte.gz", lambda d: d[:10], "truncated: 10 bytes, its IDX header needs "
     "16"),
    ("train-labels-idx1-ubyte.gz", lambda d: d[:2], "truncated: 2 bytes, not even an IDX header"),
    ("train-labels-idx1-ubyte.gz", lambda d: d + b"\x00", "1 bytes more than the 60 labels its "
     "header promises (68 bytes)"),
    ("train-labels-idx1-ubyte.gz", lambda d: _relabel(d, 7, 10),
     "label 10 at index 7 is outside 0-9 (1 such labels)"),
    ("t10k-images-idx3-ubyte.gz",
     lambda d: d[:8] + (27).to_bytes(4, "big") + d[12:16] + d[16:16 + 20 * 27 * 28],
     "images of 27x28, expected Fashion-MNIST's 28x28"),
    ("t10k-labels-idx1-ubyte.gz", lambda d: d[:4] + (0).to_bytes(4, "big"),
     "its header says it holds no labels"),
]


@pytest.mark.parametrize("name,change,message", DAMAGE,
                         ids=[f"{n.split('-')[0]}-{n.split('-')[1]}-{i}"
                              for i, (n, _, _) in enumerate(DAMAGE)])
def test_a_damaged_file_is_one_line_naming_it(idx_dir, name, change, message):
    directory, _ = idx_dir
    path = os.path.join(directory, name)
    _rewrite(path, change)
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    assert str(error.value) == f"{path}: {message}"


def test_counts_must_pair_up(tmp_path):
    directory = str(tmp_path / "fashion")
    write_idx_files(directory)
    labels = os.path.join(directory, "train-labels-idx1-ubyte.gz")
    _rewrite(labels, lambda d: d[:4] + (59).to_bytes(4, "big") + d[8:-1])
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    images = os.path.join(directory, "train-images-idx3-ubyte.gz")
    assert str(error.value) == (f"{labels} has 59 labels but {images} has 60 images; they must "
                                "pair up one to one")


@pytest.mark.parametrize("damage,message", [
    ("not gzip", "not a complete gzip file (BadGzipFile: Not a gzipped file (b'no'))"),
    ("truncated gzip", "not a complete gzip file (EOFError: Compressed file ended before the "
                       "end-of-stream marker was reached)"),
    ("bad crc", "not a complete gzip file (BadGzipFile: CRC check failed"),
])
def test_a_damaged_gzip_file_is_one_line_naming_it(idx_dir, damage, message):
    directory, _ = idx_dir
    path = os.path.join(directory, "train-images-idx3-ubyte.gz")
    with open(path, "rb") as f:
        data = f.read()
    if damage == "not gzip":
        data = b"not a gzip stream"
    elif damage == "truncated gzip":
        data = data[:len(data) // 2]
    else:
        data = data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    text = str(error.value)
    assert text.startswith(f"{path}: {message}") and "\n" not in text


@pytest.mark.parametrize("gz", [True, False])
def test_a_file_larger_than_any_idx_file_is_refused_before_it_is_read_whole(
        tmp_path, monkeypatch, gz):
    # a gzip bomb: a few kilobytes that decompress to more than the bound
    monkeypatch.setattr(fashion_mnist, "MAX_BYTES", 1 << 16)
    directory = str(tmp_path / "files")
    write_idx_files(directory, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = os.path.join(directory, name)
    data = (2051).to_bytes(4, "big") + bytes(4 * 3) + bytes(1 << 20)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    assert str(error.value) == (f"{path}: more than 65536 bytes{' decompressed' if gz else ''}, "
                                "too large for a Fashion-MNIST IDX file")


def test_a_header_whose_size_overflows_64_bits_is_one_line(idx_dir):
    directory, _ = idx_dir
    path = os.path.join(directory, "t10k-images-idx3-ubyte")
    os.remove(path + ".gz")
    with open(path, "wb") as f:  # 4 x 2^31 x 2^31 bytes: 2^64, 0 in int64
        f.write(b"".join(n.to_bytes(4, "big") for n in (2051, 4, 2 ** 31, 2 ** 31)))
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    assert str(error.value) == (f"{path}: truncated: its header promises 4 images of "
                                f"2147483648x2147483648 ({2 ** 64 + 16} bytes), it has 16 bytes")


def test_training_files_in_place_of_the_test_files_are_refused(idx_dir):
    directory, _ = idx_dir
    for kind in ("images-idx3", "labels-idx1"):
        os.replace(os.path.join(directory, f"train-{kind}-ubyte.gz"),
                   os.path.join(directory, f"t10k-{kind}-ubyte.gz"))
    write_idx_files(directory + "_train")  # the same training files again
    for kind in ("images-idx3", "labels-idx1"):
        os.replace(os.path.join(directory + "_train", f"train-{kind}-ubyte.gz"),
                   os.path.join(directory, f"train-{kind}-ubyte.gz"))
    with pytest.raises(UnreadableInput) as error:
        sources.load(config(directory))
    assert str(error.value) == (
        f"--fashion_mnist_dir={directory}: the test images are the training images (the "
        "t10k-images-idx3-ubyte file is a copy of train-images-idx3-ubyte); the test split "
        "must be images of its own, Fashion-MNIST's t10k files")


def test_image_size_is_bounded_before_the_files_are_read(tmp_path):
    # no files at all: the bound comes first, so nothing is read or resized
    with pytest.raises(ConfigError) as error:
        sources.load(config(str(tmp_path), image_size=225))
    assert str(error.value) == ("--image_size=225 is above its limit of 224: 8x the 28-pixel "
                                "side of Fashion-MNIST's images; upsampling further adds no "
                                "detail, only memory and time")


def test_a_missing_file_or_directory_is_one_line(tmp_path, idx_dir):
    directory, _ = idx_dir
    os.remove(os.path.join(directory, "t10k-images-idx3-ubyte.gz"))
    with pytest.raises(ConfigError) as error:
        sources.load(config(directory))
    assert str(error.value).startswith(f"--fashion_mnist_dir={directory}: no "
                                       "t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz "
                                       "there (Fashion-MNIST's four IDX files: ")
    absent = str(tmp_path / "absent")
    with pytest.raises(ConfigError, match=f"^--fashion_mnist_dir={absent} is not a directory$"):
        sources.load(config(absent))


def test_an_incomplete_debian_directory_is_passed_over(monkeypatch, tmp_path):
    """Only a complete Debian directory is read; else TFDS (here: mocked) is."""
    partial = str(tmp_path / "debian")
    write_idx_files(partial)
    os.remove(os.path.join(partial, "train-labels-idx1-ubyte.gz"))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", partial)
    with tfds.testing.mock_data(num_examples=50):
        data = sources.load(config(None, data_dir=str(tmp_path / "tfds")))
    assert len(data.test_labels) == 50


def test_the_directory_flag_is_for_fashion_mnist_only(tmp_path):
    with pytest.raises(ConfigError, match="--fashion_mnist_dir applies to "
                                          "--dataset=fashion_mnist only"):
        cli.validated(Config(dataset="digits", fashion_mnist_dir=str(tmp_path)))


def test_a_short_run_of_the_recipe_on_tiny_files(idx_dir, tmp_path, capfd):
    directory, _ = idx_dir
    model_dir = tmp_path / "run"
    os.chdir(REPO)
    status = main_in_process(
        "--recipe=fashion_mnist", f"--fashion_mnist_dir={directory}", f"--model_dir={model_dir}",
        "--num_labeled=20", "--num_val=10", "--train_steps=4", "--log_every=2",
        "--labeled_batch_size=4", "--uda_ratio=2", "--finetune_steps=2",
        "--finetune_batch_size=4", "--eval_batch_size=32")
    assert status == 0, capfd.readouterr().err[-3000:]
    results = json.loads((model_dir / "results.json").read_text())
    assert results["dataset"] == "fashion_mnist" and results["train_steps"] == 4
    assert 0.0 <= results["test_accuracy"] <= 1.0 and "feedback_diagnostics" in results
    info = json.loads((model_dir / "dataset_info.json").read_text())
    assert info["input_shape"] == [28, 28, 1] and info["class_names"][9] == "Ankle boot"
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["fashion_mnist_dir"] == directory
