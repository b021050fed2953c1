"""Every --dataset source, offline: digits (embedded), an image folder the test writes, and TFDS
cifar10 / svhn_cropped / stl10 / ImageNet under tfds.testing.mock_data. Checks shapes, dtypes,
value ranges, class balance, determinism, disjoint splits, and one-line errors on bad input."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from mpl_tf import cli
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError
from mpl_tf.errors import UnreadableInput
from mpl_tf.data import sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_arrays(data, channels, dtype=np.uint8):
    """Shapes, dtypes and value ranges every array-backed image source promises (TFDS images
    are held as uint8)."""
    for split in ("labeled", "unlabeled", "val", "test"):
        images = getattr(data, f"{split}_images")
        labels = getattr(data, f"{split}_labels")
        assert images.dtype == dtype and images.shape[1:] == data.input_shape
        assert images.shape[-1] == channels and len(images) == len(labels)
        assert images.min() >= 0.0 and images.max() <= 255.0
        assert labels.dtype == np.int32
    assert len(data.pixel_mean) == len(data.pixel_std) == channels
    assert len(data.class_names) == data.num_classes


def check_disjoint(data):
    labeled, val = set(data.labeled_indices), set(data.val_indices)
    assert not labeled & val


# --- digits ---------------------------------------------------------------------------------

def test_digits_arrays_balance_disjoint_splits_and_determinism():
    config = Config(dataset="digits", num_labeled=50)
    data = sources.load(config)
    check_arrays(data, channels=1, dtype=np.float32)
    assert data.input_shape == (16, 16, 1) and data.view == "pad_crop"
    assert np.all(np.bincount(data.labeled_labels) == 5)
    assert len(data.val_labels) == 100 and len(data.test_labels) == 539  # 30% of 1,797
    check_disjoint(data)
    assert len(data.unlabeled_labels) == 1797 - 539 - 100
    again = sources.load(config)
    assert np.array_equal(data.labeled_indices, again.labeled_indices)
    assert np.array_equal(data.labeled_images, again.labeled_images)
    other = sources.load(config.replace(split_seed=1))
    assert not np.array_equal(data.labeled_indices, other.labeled_indices)
    assert np.array_equal(data.test_images, other.test_images)  # one test set for every seed


# --- image folders --------------------------------------------------------------------------

def write_images(directory, count, color, size=(12, 12), ext="png"):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(len(directory) + count)
    for i in range(count):
        pixels = np.clip(rng.normal(color, 30, (*size[::-1], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(directory, f"img{i:03d}.{ext}"))


def make_folder(root, test=False, unlabeled=0):
    for name, color in (("cat", 60), ("dog", 190)):
        write_images(os.path.join(root, "labeled", name), 20, color)
        if test:
            write_images(os.path.join(root, "test", name), 5, color, ext="jpg")
    if unlabeled:
        write_images(os.path.join(root, "unlabeled", "deep", "er"), unlabeled, 120)
    return root


def check_streams(data, channels):
    """What a streamed (folder) source promises: uint8 images of the input shape."""
    for split in ("labeled", "unlabeled", "val", "test"):
        images, labels = next(iter(data.examples(split).dataset().batch(1000)))
        assert images.dtype == tf.uint8 and tuple(images.shape[1:]) == data.input_shape
        assert images.shape[-1] == channels and len(labels) == data.size(split)
        assert labels.dtype == tf.int32
    assert len(data.pixel_mean) == len(data.pixel_std) == channels
    assert len(data.class_names) == data.num_classes


def test_folder_holds_out_test_and_names_labeled_files(tmp_path):
    root = make_folder(str(tmp_path / "pets"), unlabeled=7)
    data = sources.load(Config(dataset=f"folder:{root}", num_labeled=6))
    check_streams(data, channels=3)
    assert data.class_names == ("cat", "dog") and data.input_shape == (12, 12, 3)
    test_labels = np.concatenate([y for _, y in data.examples("test").dataset().batch(100)])
    assert len(test_labels) == 8 and np.all(np.bincount(test_labels) == 4)
    assert data.size("val") == 3  # 10% of the 32 training images
    assert np.all(np.bincount(data.labeled_labels) == 3)
    unlabeled = np.concatenate([y for _, y in data.examples("unlabeled").dataset().batch(100)])
    assert len(unlabeled) == 32 - 3 + 7 and np.sum(unlabeled == -1) == 7
    check_disjoint(data)
    assert all(n.startswith("labeled" + os.sep) for n in data.labeled_ids)
    for name, label in zip(data.labeled_ids, data.labeled_labels):
        assert name.split(os.sep)[1] == data.class_names[label]


def test_folder_with_test_dir_and_image_size(tmp_path):
    root = make_folder(str(tmp_path / "pets"), test=True)
    data = sources.load(Config(dataset=f"folder:{root}", num_labeled=4, image_size=8))
    check_streams(data, channels=3)
    assert data.input_shape == (8, 8, 3) and data.size("test") == 10
    assert data.size("labeled") + data.size("unlabeled") - 4 + data.size("val") == 40


@pytest.mark.parametrize("setup,message,error_class", [
    ("empty", "no images in", ConfigError),
    ("one_class", "needs at least 2 classes", ConfigError),
    ("missing", "is not a directory", ConfigError),
    ("corrupt", "1 of 41 images are unreadable", UnreadableInput),
    ("sizes", "set --image_size", ConfigError),
])
def test_bad_folders_fail_in_one_line(tmp_path, setup, message, error_class):
    root = str(tmp_path / "data")
    if setup == "empty":
        os.makedirs(os.path.join(root, "labeled", "cat"))
    elif setup == "one_class":
        write_images(os.path.join(root, "labeled", "cat"), 3, 60)
    elif setup == "corrupt":
        make_folder(root)
        with open(os.path.join(root, "labeled", "dog", "broken.png"), "wb") as f:
            f.write(b"\x89PNG not really")
    elif setup == "sizes":
        make_folder(root)
        write_images(os.path.join(root, "labeled", "dog", "big"), 1, 10, size=(20, 16))
    with pytest.raises(error_class) as error:
        sources.load(Config(dataset=f"folder:{root}", num_labeled=4))
    assert message in str(error.value) and "\n" not in str(error.value)
    if setup == "corrupt":
        assert os.path.join(root, "labeled", "dog", "broken.png") in str(error.value)


def test_corrupt_images_are_skipped_with_a_warning_when_asked(tmp_path, caplog):
    root = make_folder(str(tmp_path / "data"))
    with open(os.path.join(root, "labeled", "dog", "broken.png"), "wb") as f:
        f.write(b"garbage")
    data = sources.load(Config(dataset=f"folder:{root}", num_labeled=4,
                               skip_corrupt_images=True))
    assert data.size("test") + data.size("val") + data.size("unlabeled") == 40
    assert "broken.png" in caplog.text and data.info()["skipped_corrupt_images"] == 1


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ConfigError) as error:
        sources.load(Config(dataset="mnist"))
    message = str(error.value)
    assert message.startswith("--dataset=mnist is not valid; valid values: two_moons")
    for name in ("digits", "cifar10", "cifar100", "svhn_cropped", "stl10", "imagenet",
                 "imagenet2012", "folder:PATH"):
        assert name in message


@pytest.mark.parametrize("name, root", [("folder:/data/pets", "/data/pets"),
                                        ("folder:rel/a:b", "rel/a:b"), ("folder:", None),
                                        ("digits", None), ("folders:/x", None)])
def test_a_folder_name_is_parsed_in_one_place(name, root):
    assert sources.folder_root(name) == root
    if root:
        assert sources.folder_dataset(root) == name
        sources.check_name(name)
    elif name != "digits":
        with pytest.raises(ConfigError, match="is not valid"):
            sources.check_name(name)


@pytest.mark.parametrize("dataset", ["digits", "two_moons", "cifar10"])
def test_cache_dir_is_refused_for_anything_but_a_folder(dataset, tmp_path):
    with pytest.raises(ConfigError, match="--cache_dir applies to --dataset=folder:PATH only"):
        cli.validated(Config(dataset=dataset, cache_dir=str(tmp_path)))


# --- TFDS (mocked) --------------------------------------------------------------------------

@pytest.fixture
def tfds_dir(tmp_path):
    return str(tmp_path / "tfds")


def test_cifar10_from_mock_tfds(tfds_dir):
    config = Config(dataset="cifar10", num_labeled=40, num_val=30, data_dir=tfds_dir)
    with tfds.testing.mock_data(num_examples=300):
        data = sources.load(config)
        again = sources.load(config)
    check_arrays(data, channels=3)
    assert data.input_shape == (32, 32, 3) and data.num_classes == 10
    assert data.view == "flip_pad_crop"
    assert data.pixel_mean == pytest.approx((125.307, 122.961, 113.8575))
    assert np.all(np.bincount(data.labeled_labels) == 4) and len(data.val_labels) == 30
    check_disjoint(data)
    assert len(data.unlabeled_labels) == 270  # train minus val, labeled included
    assert np.array_equal(data.labeled_indices, again.labeled_indices)


def test_svhn_extra_split_joins_the_unlabeled_pool_only_when_asked(tfds_dir):
    with tfds.testing.mock_data(num_examples=200):
        plain = sources.load(Config(dataset="svhn_cropped", num_labeled=20, num_val=20,
                                         data_dir=tfds_dir))
        extra = sources.load(Config(dataset="svhn_cropped", num_labeled=20, num_val=20,
                                         data_dir=tfds_dir, extra_unlabeled=True))
        images, labels = next(iter(extra.examples("unlabeled").dataset(seed=5).batch(400)))
    check_arrays(plain, channels=3)
    assert plain.view == "pad_crop" and plain.streams is None
    assert extra.unlabeled_images is None and extra.size("unlabeled") == 180 + 200
    assert images.shape == (380, 32, 32, 3) and images.dtype == tf.float32
    assert np.all(np.bincount(extra.labeled_labels) == 2)


def test_stl10_unlabelled_split_is_a_stream_in_the_pool(tfds_dir):
    with tfds.testing.mock_data(num_examples=100):
        data = sources.load(Config(dataset="stl10", num_labeled=20, num_val=10,
                                   data_dir=tfds_dir))
    assert data.input_shape == (96, 96, 3) and data.view == "flip_pad_crop"
    assert data.unlabeled_images is None and data.size("unlabeled") == 90 + 100
    assert data.size("val") == 10 and data.size("test") == 100


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_a_tfds_download_reaches_the_network_and_says_so_in_one_line(tfds_dir, no_network,
                                                                      capfd, name):
    """TFDS's real download path, without data or network: the failure is a network error in
    one line (not a missing module, nor TFDS's progress bars on stderr). A fresh venv has only
    requirements.txt, which must pin what the path imports."""
    with open(os.path.join(REPO, "requirements.txt")) as f:
        assert "importlib_resources==" in f.read()
    with pytest.raises(ConfigError) as error:
        sources.load(Config(dataset=name, data_dir=tfds_dir))
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        f"--dataset={name}: TFDS could not prepare {name}")
    assert "network error, " in message and "Connection refused" in message, message
    assert "ModuleNotFoundError" not in message
    assert capfd.readouterr().err == ""


@pytest.fixture
def offline(monkeypatch):
    """No network, as on a machine without one: every connection goes to a closed local port;
    TFDS's retries stay as they are."""
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: refused
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)


def test_an_offline_download_fails_at_once_and_leaves_only_what_was_there(tmp_path, offline,
                                                                           capfd):
    """Offline, TFDS retried for minutes (3.5 for cifar10), printed a dozen warnings and left
    partial files in --data_dir; now its first download's host is asked once, with a short
    timeout, and the run stops in one line. What --data_dir held before stays, even a file
    named like TFDS's partial ones."""
    import time

    data_dir = tmp_path / "tfds"
    (data_dir / "mine").mkdir(parents=True)
    (data_dir / "mine" / "notes.tmp.keep").write_text("mine")
    (data_dir / "old.incomplete").write_text("mine")
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    capfd.readouterr()
    start = time.monotonic()
    with pytest.raises(ConfigError) as error:
        sources.load(Config(dataset="cifar10", data_dir=str(data_dir)))
    elapsed = time.monotonic() - start
    message = str(error.value)
    assert elapsed < 30, elapsed
    assert message.startswith(f"--dataset=cifar10: TFDS could not prepare cifar10 in "
                              f"--data_dir={data_dir} (network error, cannot reach "
                              "www.cs.toronto.edu: ")
    assert "Connection refused" in message and "\n" not in message
    assert capfd.readouterr().err == ""
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before


def test_a_failed_preparation_removes_the_partial_files_it_created(tmp_path):
    """What TFDS marks unfinished and the directories left empty go; a finished download, and
    anything there before (partial-looking or not), stay; a --data_dir it created goes if
    empty."""
    from mpl_tf.data import downloads

    root = tmp_path / "tfds"
    (root / "downloads" / "cifar10").mkdir(parents=True)
    (root / "downloads" / "cifar10" / "earlier.tmp.1").mkdir()
    (root / "cifar100" / "3.0.2").mkdir(parents=True)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    with pytest.raises(KeyboardInterrupt):
        with downloads.partial_files_removed(str(root)):
            (root / "downloads" / "cifar10" / "a.tar.gz.tmp.2f3e").mkdir()
            (root / "downloads" / "cifar10" / "a.tar.gz.tmp.2f3e" / "a.tar.gz").write_text("x")
            (root / "downloads" / "finished.tar.gz").write_text("x")
            (root / "downloads" / "extracted").mkdir()
            (root / "cifar10" / "incomplete.AB12_3.0.2").mkdir(parents=True)
            (root / "cifar10" / "incomplete.AB12_3.0.2" / "shard").write_text("x")
            raise KeyboardInterrupt
    after = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert after == sorted([*before, os.path.join("downloads", "finished.tar.gz")])

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        with downloads.partial_files_removed(str(fresh)):
            (fresh / "downloads" / "x.tmp.1").mkdir(parents=True)
            raise OSError("no space left")
    assert not fresh.exists()


# --- ImageNet (mocked with file names, so the subsets overlap the training split as in TFDS) ---

SUBSET_EVERY, VALIDATION = 10, 30


def fake_imagenet(train):
    """A TFDS `_as_dataset` stand-in: variable-size PNGs; imagenet2012 train has `train` images
    (label = index % 1000, file name from the index), the subsets every SUBSET_EVERY-th of them
    (same file names), validation VALIDATION others."""

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        del read_config, kwargs
        if split == "train":
            indices = range(0, train, SUBSET_EVERY if "subset" in self.name else 1)
            names = [f"n{i % 1000:08d}_{i}.JPEG" for i in indices]
        else:
            indices = range(train, train + VALIDATION)
            names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in indices]
        rng = np.random.default_rng(0)
        images = [tf.io.encode_png(rng.integers(0, 256, (*rng.integers(5, 40, 2), 3), np.uint8))
                  for _ in indices]
        ds = tf.data.Dataset.from_tensor_slices({
            "file_name": names, "label": np.array([i % 1000 for i in indices], np.int64),
            "image": tf.stack(images)})
        if not (decoders and "image" in decoders):
            ds = ds.map(lambda ex: {**ex, "image": tf.io.decode_png(ex["image"], channels=3)})
        return ds

    return as_dataset


@pytest.fixture
def manual_dir(tmp_path):
    directory = tmp_path / "manual"
    directory.mkdir()
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (directory / name).write_bytes(b"")
    return str(directory)


def read_all(data, split):
    return list(data.examples(split).dataset().as_numpy_iterator())


def test_imagenet_alias_uses_the_10pct_subset_and_streams_every_split(tfds_dir, manual_dir):
    config = Config(dataset="imagenet", label_fraction=0.1, num_val=300, data_dir=tfds_dir,
                    manual_dir=manual_dir, unlabeled_excludes_labeled=True)
    with tfds.testing.mock_data(as_dataset_fn=fake_imagenet(1000)):  # label = example id
        data = sources.load(config)
        labeled, val, unlabeled, test = (read_all(data, s)
                                         for s in ("labeled", "val", "unlabeled", "test"))
    assert data.input_shape == (224, 224, 3) and data.view == "resized_crop"
    assert data.num_classes == 1000 and data.pixel_mean[0] == pytest.approx(123.675)
    assert len(labeled) == len(data.labeled_ids) == 100 and len(test) == VALIDATION
    assert data.labeled_ids[:2] == ("n00000000_0.JPEG", "n00000010_10.JPEG")
    assert labeled[0][0].dtype == np.uint8 and labeled[0][0].shape != labeled[1][0].shape
    ids = [{int(label) for _, label in part} for part in (labeled, val, unlabeled)]
    assert 200 < len(ids[1]) < 400  # hash-sampled: --num_val on average
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert set.union(*ids) == set(range(1000))


def test_imagenet2012_samples_a_class_balanced_subset(tfds_dir, manual_dir):
    config = Config(dataset="imagenet2012", num_labeled=1000, num_val=50, data_dir=tfds_dir,
                    manual_dir=manual_dir, image_size=32)
    with tfds.testing.mock_data(as_dataset_fn=fake_imagenet(2000)):
        data = sources.load(config)
        again = sources.load(config)
        labeled = read_all(data, "labeled")
    assert np.all(np.bincount(data.labeled_labels, minlength=1000) == 1)
    assert sorted(label for _, label in labeled) == list(range(1000))
    assert data.labeled_ids == again.labeled_ids and data.input_shape == (32, 32, 3)


def test_imagenet_without_the_manual_tars_says_which_files_go_where(tfds_dir, tmp_path):
    with pytest.raises(ConfigError) as error:
        sources.load(Config(dataset="imagenet", label_fraction=0.1, data_dir=tfds_dir,
                            manual_dir=str(tmp_path)))
    message = str(error.value)
    assert "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in --manual_dir" in message
    assert "missing: ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in message
    assert "\n" not in message
