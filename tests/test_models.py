"""The network registry: sizes, shapes, seeding, initialisation, BN settings (and the fused BN
against Keras'), the weight-decay split, input-shape errors, and MPL steps on conv nets."""

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mpl_tf import cli
from mpl_tf import models
from mpl_tf.method.build import build_model
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError
from mpl_tf.models import leaf_layers
from mpl_tf.models.layers import FusedBatchNormalization

# Every registered convolutional network: a new one must be given a typical input here.
CONV_MODELS = tuple(name for name, entry in models.NETWORKS.items() if entry.min_image_size)
# A typical input for each network: digits for the CNN, Fashion-MNIST for mnist-cnn, CIFAR for
# the WRNs, and the smallest image ResNet-50 takes (its weights do not depend on the image size).
SHAPES = {"cnn": (8, 8, 1), "mnist-cnn": (28, 28, 1), "wrn-28-2": (32, 32, 3),
          "wrn-28-8": (32, 32, 3), "resnet-50": (32, 32, 3)}


@functools.lru_cache(maxsize=None)
def network(model, input_shape, num_classes=10, seed=0, **config_overrides):
    """One built network per argument set, shared by the tests (ResNet-50 takes seconds)."""
    config = Config(model=model, **config_overrides)
    return models.build(config, input_shape, num_classes, seed=seed, name="net")


def trainable_count(net):
    return sum(int(np.prod(v.shape)) for v in net.trainable_weights)


@pytest.mark.parametrize("model, input_shape, num_classes, trainable, total", [
    # The released WRN-28-2 has a 32-channel stem and hence no projection in stage 1: 4,560 more
    # weights than the common 16-channel-stem WRN-28-2 (1,467,610, the usual "1.47M"). The
    # paper's "1.45M" matches neither count exactly; the 3,648 BN moving statistics are not
    # trainable and are counted only in `total`.
    ("wrn-28-2", (32, 32, 3), 10, 1_472_170, 1_475_818),
    ("wrn-28-8", (32, 32, 3), 10, 23_485_066, 23_499_658),
    # Bias-free convolutions, as torchvision's ResNet-50 (25,557,032): the paper's "25.5M".
    ("resnet-50", (32, 32, 3), 1000, 25_557_032, 25_610_152),
    ("cnn", (8, 8, 1), 10, 24_042, 24_266),
    ("cnn", (16, 16, 3), 10, 24_618, 24_842),
])
def test_parameter_counts(model, input_shape, num_classes, trainable, total):
    net = network(model, input_shape, num_classes)
    assert trainable_count(net) == trainable
    assert net.count_params() == total


@pytest.mark.parametrize("model, input_shape", [
    ("cnn", (8, 8, 1)), ("cnn", (16, 16, 3)), ("cnn", (13, 9, 1)), ("wrn-28-2", (32, 32, 3)),
    ("wrn-28-2", (8, 8, 3)), ("wrn-28-8", (32, 32, 3)), ("resnet-50", (32, 32, 3)),
    ("resnet-50", (48, 40, 3)), ("mlp", (2,))])
def test_logits_shape_with_and_without_normalization(model, input_shape):
    channels = input_shape[-1] if len(input_shape) == 3 else 2
    config = Config(model=model, dropout_rate=0.2)
    images = tf.random.uniform((2, *input_shape), 0, 255, seed=1)
    for mean, std in ((None, None), ([120.0] * channels, [60.0] * channels)):
        net = models.build(config, input_shape, 7, seed=0, name="net", pixel_mean=mean,
                           pixel_std=std)
        for training in (False, True):
            logits = net(images, training=training)
            assert logits.shape == (2, 7) and logits.dtype == tf.float32
            assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("model", ["cnn", "wrn-28-2"])
def test_same_seed_same_weights_other_seed_other_weights(model):
    shape = SHAPES[model]
    first = [v.numpy() for v in network(model, shape, seed=3).weights]
    config = Config(model=model)
    again = models.build(config, shape, 10, seed=3, name="other_name").weights
    other = models.build(config, shape, 10, seed=4, name="net").weights
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b.numpy())
    kernels = [(a, b.numpy()) for a, b in zip(first, other) if a.ndim > 1]
    assert kernels and all(not np.allclose(a, b) for a, b in kernels)


def test_layers_do_not_share_draws():
    """Each conv kernel has its own seed: two same-shaped kernels must differ."""
    net = network("wrn-28-2", (32, 32, 3))
    same_shape = [v.numpy() for v in net.weights if v.shape == (3, 3, 32, 32)]
    assert len(same_shape) == 8
    assert len({a.tobytes() for a in same_shape}) == len(same_shape)


@pytest.mark.parametrize("model, batch_norm_layers", [
    ("cnn", 3), ("wrn-28-2", 25), ("resnet-50", 53)])
def test_batch_norm_settings_come_from_the_config(model, batch_norm_layers):
    net = network(model, SHAPES[model], batch_norm_decay=0.9, batch_norm_epsilon=1e-5)
    norms = [l for l in leaf_layers(net) if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == batch_norm_layers
    assert all(l.momentum == 0.9 and l.epsilon == 1e-5 for l in norms)


def conv_bn_pair(momentum=0.9, epsilon=1e-3):
    """The same conv -> BN network twice: with the fused layer and with Keras' own."""
    pair = []
    for norm in (FusedBatchNormalization, keras.layers.BatchNormalization):
        inputs = keras.Input((5, 6, 3))
        x = keras.layers.Conv2D(4, 3, padding="same",
                                kernel_initializer=keras.initializers.RandomNormal(seed=1))(inputs)
        x = norm(momentum=momentum, epsilon=epsilon,
                 gamma_initializer=keras.initializers.RandomUniform(0.5, 2.0, seed=2),
                 beta_initializer=keras.initializers.RandomUniform(-1, 1, seed=3))(x)
        pair.append(keras.Model(inputs, keras.layers.Flatten()(x)))
    return pair


def test_fused_batch_norm_matches_keras():
    """Outputs, gradients, moving statistics and inference agree with Keras' own layer."""
    images = tf.random.normal((4, 5, 6, 3), seed=4) * 3.0 + 1.0
    weights = tf.random.normal((4, 5 * 6 * 4), seed=5)
    results = []
    for net in conv_bn_pair():
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = net(images, training=True)
            loss = tf.reduce_sum(weights * tf.tanh(outputs))
        grads = tape.gradient(loss, [images, *net.trainable_variables])
        results.append([outputs, *grads, *net.non_trainable_weights,
                        net(images, training=False)])
    for fused, reference in zip(*results):
        np.testing.assert_allclose(np.asarray(fused), np.asarray(reference), rtol=1e-4,
                                   atol=1e-4)


def test_twice_differentiated_networks_use_keras_batch_norm():
    """The exact feedback's second derivative would be off with the fused kernel."""
    for feedback, label_type, layer in (("exact", "soft", keras.layers.BatchNormalization),
                                        ("taylor", "sampled", FusedBatchNormalization)):
        config = cli.validated(Config(model="cnn", feedback=feedback, label_type=label_type))
        model = build_model(config, (8, 8, 1), 3)
        for net in (model.teacher, model.student):
            norms = [l for l in leaf_layers(net)
                     if isinstance(l, keras.layers.BatchNormalization)]
            assert norms and all(type(l) is layer for l in norms)


def test_fused_batch_norm_falls_back_where_it_cannot_fuse():
    fused, _ = conv_bn_pair()
    assert fused.layers[2].__class__ is FusedBatchNormalization
    net64 = models.build(Config(model="cnn"), (8, 8, 1), 3, seed=0, name="net", dtype="float64")
    assert all(v.dtype == "float64" for v in net64.weights)
    assert net64(tf.ones((2, 8, 8, 1), tf.float64), training=True).dtype == tf.float64
    fused.trainable = False  # frozen: Keras uses the moving statistics, even in training mode
    images = tf.random.normal((4, 5, 6, 3), seed=4)
    np.testing.assert_allclose(fused(images, training=True), fused(images, training=False))


def test_dropout_rate_comes_from_the_config():
    without = network("wrn-28-2", (32, 32, 3))
    assert not [l for l in leaf_layers(without) if isinstance(l, keras.layers.Dropout)]
    net = network("wrn-28-2", (32, 32, 3), dropout_rate=0.3)
    (dropout,) = [l for l in leaf_layers(net) if isinstance(l, keras.layers.Dropout)]
    assert dropout.rate == 0.3


@pytest.mark.parametrize("model, num_classes", [("wrn-28-2", 10), ("resnet-50", 1000)])
def test_initialization_follows_the_released_code(model, num_classes):
    net = network(model, SHAPES[model], num_classes)
    layers = list(leaf_layers(net))
    dense = net.get_layer("logits")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    limit = 1.0 / math.sqrt(num_classes)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert np.std(kernel) == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert not bias.any()
    for conv in (l for l in layers if isinstance(l, keras.layers.Conv2D)):
        values = conv.kernel.numpy()
        assert conv.bias is None
        if values.size >= 20_000:  # enough draws for a 3% check of the spread
            k, _, _, filters = values.shape
            assert np.std(values) == pytest.approx(math.sqrt(2.0 / (k * k * filters)), rel=0.03)
            assert abs(np.mean(values)) < 0.05 * np.std(values)
    for norm in (l for l in layers if isinstance(l, keras.layers.BatchNormalization)):
        np.testing.assert_array_equal(norm.gamma.numpy(), 1.0)
        np.testing.assert_array_equal(norm.beta.numpy(), 0.0)


@pytest.mark.parametrize("model", CONV_MODELS)
def test_weight_decay_skips_exactly_the_batch_norm_variables(model):
    channels = SHAPES[model][-1]
    net = network(model, SHAPES[model])
    wrapped = models.build(Config(model=model), SHAPES[model], 10, seed=0, name="teacher",
                           pixel_mean=[1.0] * channels, pixel_std=[2.0] * channels)
    for candidate in (net, wrapped):
        kinds = {"norm": 0, "weights": 0}
        mask = dict(zip(map(id, candidate.trainable_variables),
                        models.weight_decay_mask(candidate)))
        is_decayed = lambda variable: mask[id(variable)]  # noqa: E731
        for layer in leaf_layers(candidate):
            for variable in layer.trainable_weights:
                if isinstance(layer, keras.layers.BatchNormalization):
                    assert not is_decayed(variable), variable.path
                    kinds["norm"] += 1
                else:
                    assert isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                    assert is_decayed(variable), variable.path
                    kinds["weights"] += 1
        assert kinds["norm"] and kinds["weights"]
        assert sum(kinds.values()) == len(candidate.trainable_weights)


@pytest.mark.parametrize("model, input_shape, needs", [
    ("resnet-50", (8, 8, 3), "at least 32x32"),
    ("resnet-50", (224, 16, 3), "at least 32x32"),
    ("wrn-28-2", (7, 7, 3), "at least 8x8"),
    ("wrn-28-8", (2,), "at least 8x8"),
    ("cnn", (2,), "at least 8x8"),
    ("cnn", (4, 4, 1), "at least 8x8"),
    ("cnn", (64,), "at least 8x8"),
])
def test_inputs_a_network_cannot_take_raise_one_line(model, input_shape, needs):
    with pytest.raises(ConfigError) as error:
        models.build(Config(model=model), input_shape, 10, seed=0, name="net")
    message = str(error.value)
    assert "\n" not in message
    assert f"--model={model}" in message and str(input_shape) in message and needs in message


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="--model=wrn-28-3 is not valid; valid values: mlp, "
                                          "cnn, mnist-cnn, wrn-28-2, wrn-28-8, resnet-50"):
        models.build(Config(model="wrn-28-3"), (32, 32, 3), 10, seed=0, name="net")


def test_exact_feedback_differentiates_through_a_conv_net():
    """Second order through conv + BN: the feedback term moves the teacher."""
    config = Config(model="cnn", labeled_batch_size=2, unlabeled_batch_size=4,
                    label_type="soft", feedback="exact", train_steps=10,
                    log_every=10).validate()
    rng = np.random.default_rng(1)
    images = lambda n: tf.constant(rng.uniform(0, 16, (n, 8, 8, 1)), tf.float32)  # noqa
    data = ((images(2), tf.constant([1, 2], tf.int32)),
            (images(4), images(4), tf.constant([0, 1, 2, 3], tf.int32)))
    teachers = []
    for feedback in ("exact", "none"):
        model = build_model(config.replace(feedback=feedback), (8, 8, 1), 3)
        model.train_step(data)
        teachers.append([v.numpy() for v in model.teacher.trainable_weights])
    differences = [np.abs(a - b).max() for a, b in zip(*teachers)]
    assert max(differences) > 1e-6 and all(np.isfinite(differences))


def test_one_mpl_step_on_wrn_28_2_moves_both_networks():
    config = Config(model="wrn-28-2", labeled_batch_size=2, unlabeled_batch_size=4,
                    uda_weight=8.0, uda_threshold=0.0, dropout_rate=0.2, momentum=0.9,
                    nesterov=True, weight_decay=5e-4, label_smoothing=0.15,
                    label_type="sampled", feedback="taylor", train_steps=10,
                    log_every=10).validate()
    model = build_model(config, (32, 32, 3), 10, pixel_mean=[125.0, 123.0, 114.0],
                        pixel_std=[63.0, 62.0, 66.0])
    rng = np.random.default_rng(0)
    images = lambda n: tf.constant(rng.uniform(0, 255, (n, 32, 32, 3)), tf.float32)  # noqa
    data = ((images(2), tf.constant([1, 7], tf.int32)),
            (images(4), images(4), tf.constant([0, 3, -1, 9], tf.int32)))
    teacher_before = [v.numpy() for v in model.teacher.weights]
    student_before = [v.numpy() for v in model.student.weights]

    logs = {k: float(v) for k, v in model.train_step(data).items()}

    assert all(np.isfinite(v) for v in logs.values()), logs
    assert logs["teacher_uda"] > 0 and logs["labeled_loss_old"] != logs["labeled_loss_new"]
    for before, net in ((teacher_before, model.teacher), (student_before, model.student)):
        moved = [not np.array_equal(b, v.numpy()) for b, v in zip(before, net.weights)]
        assert all(m for m, v in zip(moved, net.weights) if v.trainable), net.name
