"""Training and evaluation input: batch structure, shapes, dtypes and ranges of the views,
determinism under a seed, per-replica batches under MirroredStrategy, and the RandAugment ops."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from mpl_tf.config import Config

from mpl_tf.errors import ConfigError
from mpl_tf.data import augment, pipeline, randaugment, sources
from test_data_sources import fake_imagenet, make_folder, manual_dir  # noqa: F401

DIGITS = Config(dataset="digits", num_labeled=50, labeled_batch_size=16,
                unlabeled_batch_size=32)


@pytest.fixture(scope="module")
def digits():
    return sources.load(DIGITS)


def take(dataset, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(count)]


def test_digits_training_batches(digits):
    batches = take(pipeline.train_dataset(digits, DIGITS), 3)
    (x_l, y_l), (x_weak, x_strong, y_u) = batches[0]
    assert x_l.shape == (16, 16, 16, 1) and y_l.shape == (16,)
    assert x_weak.shape == x_strong.shape == (32, 16, 16, 1) and y_u.shape == (32,)
    assert x_l.dtype == x_weak.dtype == x_strong.dtype == np.float32
    assert y_l.dtype == y_u.dtype == np.int32
    for images in (x_l, x_weak, x_strong):
        assert images.min() >= 0.0 and images.max() <= 255.0
    assert not np.array_equal(x_weak, x_strong)
    assert set(y_l) <= set(digits.labeled_labels)


def test_training_input_is_replayed_exactly_and_depends_on_the_seed(digits):
    first = take(pipeline.train_dataset(digits, DIGITS), 4)
    again = take(pipeline.train_dataset(digits, DIGITS), 4)
    other = take(pipeline.train_dataset(digits, DIGITS.replace(seed=1)), 4)
    flat = [tf.nest.flatten(b) for b in (first, again, other)]
    assert all(np.array_equal(a, b) for a, b in zip(flat[0], flat[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(flat[0], flat[2]))


@pytest.mark.parametrize("dataset", ["digits", "two_moons"])
def test_resuming_at_a_step_replays_the_same_batches(digits, dataset):
    config = DIGITS.replace(dataset=dataset, num_labeled=12)
    data = digits if dataset == "digits" else sources.load(config)
    full = take(pipeline.train_dataset(data, config), 7)
    resumed = take(pipeline.train_dataset(data, config, start_step=5), 2)
    for a, b in zip(tf.nest.flatten(full[5:]), tf.nest.flatten(resumed)):
        assert np.array_equal(a, b)


def test_per_replica_batches_under_mirrored_strategy(digits):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    batch = next(iter(pipeline.train_input(digits, DIGITS, strategy)))
    (x_l, y_l), (x_weak, x_strong, y_u) = (
        tuple(strategy.experimental_local_results(t) for t in part) for part in batch)
    assert [x.shape for x in x_l] == [(8, 16, 16, 1)] * 2
    assert [x.shape for x in x_strong] == [(16, 16, 16, 1)] * 2
    with pytest.raises(ConfigError, match="--labeled_batch_size=15 is not divisible by the 2 replicas"):
        pipeline.train_input(digits, DIGITS.replace(labeled_batch_size=15), strategy)


def test_eval_dataset_reads_a_split_in_order(digits):
    by_split = take(pipeline.eval_dataset(digits, "test", 100), 10)
    assert len(by_split) == 6 and by_split[-1][0].shape == (39, 16, 16, 1)
    assert np.array_equal(np.concatenate([x for x, _ in by_split]), digits.test_images)
    assert np.array_equal(np.concatenate([y for _, y in by_split]), digits.test_labels)
    assert sum(len(y) for _, y in take(pipeline.eval_dataset(digits, "val", 64), 5)) == 100


def test_folder_and_mock_cifar10_batches(tmp_path):
    root = make_folder(str(tmp_path / "pets"), unlabeled=5)
    config = Config(dataset=f"folder:{root}", num_labeled=4, labeled_batch_size=4,
                    unlabeled_batch_size=8)
    (x_l, _), (_, x_strong, y_u) = take(pipeline.train_dataset(sources.load(config), config),
                                        1)[0]
    assert x_l.shape == (4, 12, 12, 3) and x_strong.shape == (8, 12, 12, 3)
    config = Config(dataset="cifar10", num_labeled=20, num_val=10, labeled_batch_size=4,
                    unlabeled_batch_size=8, data_dir=str(tmp_path / "tfds"))
    with tfds.testing.mock_data(num_examples=100):
        data = sources.load(config)
    (x_l, _), (_, x_strong, _) = take(pipeline.train_dataset(data, config), 1)[0]
    assert x_l.shape == (4, 32, 32, 3) and x_strong.shape == (8, 32, 32, 3)


def test_imagenet_streams_crop_variable_sizes_to_the_input_size(tmp_path, manual_dir):  # noqa
    config = Config(dataset="imagenet", label_fraction=0.1, num_val=50, image_size=48,
                    labeled_batch_size=4, unlabeled_batch_size=8,
                    data_dir=str(tmp_path / "tfds"), manual_dir=manual_dir)
    with tfds.testing.mock_data(as_dataset_fn=fake_imagenet(400)):
        data = sources.load(config)
        (x_l, _), (x_weak, x_strong, _) = take(pipeline.train_dataset(data, config), 1)[0]
        again = take(pipeline.train_dataset(data, config), 1)[0]
        test = take(pipeline.eval_dataset(data, "test", 16), 2)
    assert x_l.shape == (4, 48, 48, 3) and x_weak.shape == x_strong.shape == (8, 48, 48, 3)
    assert x_strong.min() >= 0.0 and x_strong.max() <= 255.0
    assert np.array_equal(again[1][1], x_strong)
    assert test[0][0].shape == (16, 48, 48, 3) and len(test[1][1]) == 14


@pytest.mark.parametrize("channels", [1, 3])
def test_every_randaugment_op_keeps_shape_range_and_integers(channels):
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (20, 24, channels)),
                        tf.float32)
    sign, seed = tf.constant(-1.0), tf.constant([1, 2], tf.int64)
    for op in randaugment._branches(image, 1.6, sign, seed, cutout_const=4, translate_const=4):
        out = op().numpy()
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 255
        assert np.array_equal(out, np.round(out))
    assert np.array_equal(randaugment.invert(randaugment.invert(image)), image)
    assert np.array_equal(randaugment.posterize(image, 8), image)
    assert np.array_equal(randaugment.blend(image * 0, image, 1.0), image)


def test_rand_augment_is_a_pure_function_of_its_seed():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (32, 32, 3)), tf.float32)
    outputs = [randaugment.rand_augment(image, tf.constant([3, k], tf.int64), 16, 4, 4).numpy()
               for k in (0, 0) + tuple(range(1, 12))]
    assert np.array_equal(outputs[0], outputs[1])
    assert sum(not np.array_equal(outputs[0], o) for o in outputs[2:]) >= 6


def test_cutout_paints_a_gray_square():
    image = tf.zeros((32, 32, 3))
    out = randaugment.cutout(image, 16, tf.constant([0, 5], tf.int64)).numpy()
    painted = np.argwhere(out[..., 0] == 128.0)
    assert 0 < len(painted) <= 256 and np.all(out[out != 0] == 128.0)
    assert np.ptp(painted[:, 0]) < 16 and np.ptp(painted[:, 1]) < 16


def test_resized_crop_views_and_center_crop_eval():
    views = augment.ImageViews("resized_crop", (64, 64, 3), 16.0, 16)
    image = tf.constant(np.random.default_rng(2).integers(0, 256, (90, 130, 3)), tf.uint8)
    weak, strong = views.weak_and_strong(image, tf.constant([1, 1], tf.int64))
    assert weak.shape == strong.shape == views.evaluate(image).shape == (64, 64, 3)
    assert views.weak(image, tf.constant([1, 2], tf.int64)).dtype == tf.float32
    with pytest.raises(ValueError, match="unknown view family"):
        augment.ImageViews("gaussian", (64, 64, 3), 16.0, 16)
