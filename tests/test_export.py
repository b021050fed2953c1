"""The export of a finished run: serving signatures that predict what the trained network
predicts, TF Hub modules that load and fine-tune in tf_keras, a model card with the run's real
metrics, and refusals (existing export, unfinished run, failure midway) that leave no half
export behind."""

import errno
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_testing import RESULTS, make_run

from mpl_tf import export as export_command
from mpl_tf import models
from mpl_tf.serving import export
from mpl_tf.durable import files
from mpl_tf.durable import run_dir
from mpl_tf.errors import ConfigError

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """An MLP on 8x8 RGB images, 4 classes, exported."""
    model_dir = str(tmp_path_factory.mktemp("rgb"))
    network = make_run(model_dir)
    return network, export.export_run(model_dir)


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    """A CNN with head dropout on 8x8 grayscale images, 10 classes, exported."""
    model_dir = str(tmp_path_factory.mktemp("gray"))
    network = make_run(model_dir, model="cnn", input_shape=(8, 8, 1), num_classes=10,
                       dropout_rate=0.3)
    return network, export.export_run(model_dir)


def images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def probabilities(network, pixels):
    return tf.nn.softmax(network(np.asarray(pixels, np.float32), training=False)).numpy()


def serving(export_dir):
    return tf.saved_model.load(os.path.join(export_dir, "saved_model"))


def test_saved_model_cli_lists_both_serving_signatures(rgb):
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--all", "--dir",
                            os.path.join(rgb[1], "saved_model")],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['serve_image_bytes']",
                 "inputs['images']", "inputs['image_bytes']", "DT_UINT8", "DT_STRING",
                 "outputs['probabilities']", "outputs['top_k_class_names']"):
        assert text in shown.stdout


def test_uint8_signature_predicts_what_the_network_predicts(rgb):
    network, export_dir = rgb
    batch = images((6, 8, 8, 3))
    module = serving(export_dir)
    outputs = module.signatures["serving_default"](images=tf.constant(batch))
    np.testing.assert_allclose(outputs["probabilities"], probabilities(network, batch),
                               atol=1e-5)
    top = outputs["top_k_classes"].numpy()
    assert top.shape == (6, 4)
    np.testing.assert_array_equal(top[:, 0], np.argmax(probabilities(network, batch), -1))
    names = outputs["top_k_class_names"].numpy().astype(str)
    assert (names == np.vectorize(lambda c: f"class_{c}")(top)).all()


def test_bytes_signature_agrees_with_uint8(rgb):
    module = serving(rgb[1])
    batch = images((5, 8, 8, 3), seed=1)
    encoded = [tf.io.encode_png(image).numpy() for image in batch]
    from_bytes = module.signatures["serve_image_bytes"](image_bytes=tf.constant(encoded))
    from_uint8 = module.signatures["serving_default"](images=tf.constant(batch))
    for key in ("probabilities", "top_k_probabilities"):
        np.testing.assert_allclose(from_bytes[key], from_uint8[key], atol=1e-6)
    mixed = [tf.io.encode_jpeg(images((20, 12, 3))).numpy(), encoded[0]]
    assert module.signatures["serve_image_bytes"](
        image_bytes=tf.constant(mixed))["probabilities"].shape == (2, 4)


def test_other_sizes_are_resized_to_cover_and_centre_cropped(rgb):
    network, export_dir = rgb
    module = serving(export_dir)
    wide = images((2, 8, 16, 3), seed=2)
    np.testing.assert_allclose(module.serve(wide)["probabilities"],
                               probabilities(network, wide[:, :, 4:12]), atol=1e-5)
    big = images((2, 32, 32, 3), seed=3)
    resized = tf.image.resize(big.astype(np.float32), (8, 8), antialias=True)
    np.testing.assert_allclose(module.serve(big)["probabilities"],
                               probabilities(network, resized), atol=1e-5)


def test_grayscale_network_sees_the_channel_mean(gray):
    network, export_dir = gray
    batch = images((4, 8, 8, 1), seed=4)
    module = serving(export_dir)
    outputs = module.serve(np.repeat(batch, 3, axis=-1))
    np.testing.assert_allclose(outputs["probabilities"], probabilities(network, batch),
                               atol=1e-5)
    assert outputs["top_k_classes"].shape == (4, 5)  # k = min(5, 10)


def test_keras_tfsm_layer_loads_the_serving_model(rgb):
    network, export_dir = rgb
    layer = keras.layers.TFSMLayer(os.path.join(export_dir, "saved_model"),
                                   call_endpoint="serving_default")
    batch = images((3, 8, 8, 3), seed=5)
    np.testing.assert_allclose(layer(batch)["probabilities"], probabilities(network, batch),
                               atol=1e-5)


SHAPE_ERROR = "expected uint8 images [N, H, W, 3]"


@pytest.mark.parametrize("signature,inputs,message", [
    ("serving_default", images((8, 8, 3)), SHAPE_ERROR),  # no batch dimension
    ("serving_default", images((1, 2, 8, 8, 3)), SHAPE_ERROR),
    ("serving_default", images((2, 8, 8, 1)), SHAPE_ERROR),  # wrong channel count
    ("serving_default", images((2, 8, 8, 4)), SHAPE_ERROR),
    ("serving_default", images((0, 8, 8, 3)), SHAPE_ERROR),  # empty batch
    ("serving_default", images((2, 0, 8, 3)), SHAPE_ERROR),
    ("serve_image_bytes", [b"this is not an image"], "Unknown image file format"),
    ("serve_image_bytes", [b""], "image"),
    ("serve_image_bytes", np.array([], dtype=object), "expected encoded images [N]"),
    ("serve_image_bytes", [[b"a", b"b"]], "expected encoded images [N]"),  # wrong rank
    ("serve_float", np.zeros((2, 8, 8, 1), np.float32), "expected float32 images [N, 8, 8, 3]"),
    ("serve_float", np.zeros((2, 8, 7, 3), np.float32), "expected float32 images [N, 8, 8, 3]"),
])
def test_bad_inputs_are_invalid_argument_errors(rgb, signature, inputs, message):
    module = serving(rgb[1])  # a loaded function needs its module alive
    function = module.signatures[signature]
    name = next(iter(function.structured_input_signature[1]))
    dtype = function.structured_input_signature[1][name].dtype
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        function(**{name: tf.constant(inputs, dtype)})
    assert message in raised.value.message


NON_FINITE = [float("nan"), float("inf"), -float("inf")]
FINITE_ERROR = "must be finite numbers; got NaN or Inf"


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_float_inputs_are_refused_not_answered_with_nan(rgb, value):
    """serve_float answered a NaN or Inf pixel with NaN probabilities (issue 21): every float
    entry point now refuses it, the serving signature and both Hub modules (plain call and
    serving_default)."""
    batch = np.full((2, 8, 8, 3), 100.0, np.float32)
    batch[1, 3, 4, 0] = value
    module = serving(rgb[1])
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        module.signatures["serve_float"](images=tf.constant(batch))
    assert FINITE_ERROR in raised.value.message
    for variant in export.HUB_VARIANTS:
        hub_module = tf.saved_model.load(os.path.join(rgb[1], "hub", variant))
        for call in (lambda x: hub_module(x, training=False),
                     lambda x: hub_module.signatures["serving_default"](inputs=x)):
            with pytest.raises(tf.errors.InvalidArgumentError) as raised:
                call(tf.constant(batch / 255.0))
            assert FINITE_ERROR in raised.value.message
    finite = module.signatures["serve_float"](images=tf.constant(batch[:1]))["probabilities"]
    assert np.all(np.isfinite(finite))


def test_non_image_features_must_be_finite(tmp_path):
    make_run(tmp_path, input_shape=(2,), num_classes=2, dataset="two_moons")
    module = serving(export.export_run(str(tmp_path)))
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        module.signatures["serving_default"](features=np.array([[0.5, np.nan]], np.float32))
    assert FINITE_ERROR in raised.value.message


def test_hub_modules_follow_the_reusable_savedmodel_interface(gray):
    network, export_dir = gray
    batch = images((3, 8, 8, 1), seed=6)
    rgb01 = np.repeat(batch, 3, axis=-1).astype(np.float32) / 255.0
    classifier = tf.saved_model.load(os.path.join(export_dir, "hub", "classification"))
    np.testing.assert_allclose(classifier(rgb01, training=False),
                               network(batch.astype(np.float32), training=False), atol=1e-5)
    assert classifier(rgb01, training=True).shape == (3, 10)
    assert len(classifier.trainable_variables) == len(network.trainable_variables)
    assert len(classifier.variables) >= len(classifier.trainable_variables)
    assert list(classifier.regularization_losses) == []
    features = tf.saved_model.load(os.path.join(export_dir, "hub", "feature-vector"))
    assert features(rgb01).shape == (3, 48)  # the CNN's pooled features, before dropout
    assert len(features.trainable_variables) == len(network.trainable_variables) - 2


def test_hub_keras_layer_fine_tunes_in_tf_keras(rgb):
    import tensorflow_hub as hub
    import tf_keras

    network, export_dir = rgb
    layer = hub.KerasLayer(os.path.join(export_dir, "hub", "feature-vector"), trainable=True)
    model = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), layer, tf_keras.layers.Dense(3)])
    model.compile(tf_keras.optimizers.SGD(0.5),
                  tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in layer.trainable_weights]
    assert before
    batch = images((8, 8, 8, 3), seed=7).astype(np.float32) / 255.0
    model.train_on_batch(batch, np.arange(8) % 3)
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, layer.trainable_weights))
    classifier = hub.KerasLayer(os.path.join(export_dir, "hub", "classification"))
    np.testing.assert_allclose(classifier(batch[:2]), network(batch[:2] * 255.0), atol=1e-5)


def test_model_card_holds_the_runs_real_metrics(rgb):
    hub_dir = os.path.join(rgb[1], "hub")
    with open(os.path.join(hub_dir, "MODEL_CARD.md")) as f:
        card = f.read()
    for key in ("val_accuracy", "test_accuracy", "teacher_test_accuracy"):
        assert f"{100 * RESULTS[key]:.2f}%" in card
    for text in ("40 (`--num_labeled=40`)", "split seed 7", "1000 steps", "Apache-2.0",
                 "Meta Pseudo Labels", "Pham", "[N, 8, 8, 3]", "tf.saved_model.load",
                 "hub.KerasLayer", "tf_keras", "keras.layers.TFSMLayer", "serve_image_bytes"):
        assert text in card
    with open(os.path.join(hub_dir, "model-metadata.json")) as f:
        model = json.load(f)
    assert model["description"] == card and model["licenseName"] == "Apache 2.0"
    for variant in export.HUB_VARIANTS:
        with open(os.path.join(hub_dir, variant, "model-instance-metadata.json")) as f:
            instance = json.load(f)
        assert instance["instanceSlug"] == variant and instance["framework"] == "tensorFlow2"
        assert instance["modelSlug"] == model["slug"] and instance["fineTunable"] is True
        assert "77.34%" in instance["overview"]
        assert os.path.exists(os.path.join(hub_dir, variant, "MODEL_CARD.md"))


def test_nothing_exported_holds_the_local_data_path(tmp_path):
    """publish uploads the model card, the Kaggle metadata and the Hub modules: they named a
    folder dataset by its absolute path on this machine (issue 21); now by its own name."""
    folder = tmp_path / "private_home" / "holiday_pics"
    model_dir = tmp_path / "run"
    make_run(model_dir, dataset=f"folder:{folder}")
    export_dir = export.export_run(str(model_dir))
    leaks = []
    for path in glob.glob(os.path.join(export_dir, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                content = f.read()
            if str(tmp_path).encode() in content or b"private_home" in content:
                leaks.append(os.path.relpath(path, export_dir))
    assert leaks == []
    with open(os.path.join(export_dir, "hub", "MODEL_CARD.md")) as f:
        card = f.read()
    assert "`folder:holiday_pics`" in card and "on folder:holiday_pics" in card
    with open(os.path.join(export_dir, "hub", "classification",
                           "model-instance-metadata.json")) as f:
        assert json.load(f)["trainingData"] == ["folder:holiday_pics"]


@pytest.mark.parametrize("dataset,public", [
    ("folder:/data/pets/", "folder:pets"), ("folder:~/pets", "folder:pets"),
    ("folder:/", "a local image folder"), ("cifar10", "cifar10")])
def test_a_folder_is_published_by_its_own_name(dataset, public):
    from mpl_tf.serving import model_card

    assert model_card.public_name(dataset) == public


def test_non_image_run_exports_a_features_signature(tmp_path):
    network = make_run(tmp_path, input_shape=(2,), num_classes=2, dataset="two_moons")
    export_dir = export.export_run(str(tmp_path))
    module = serving(export_dir)
    assert set(module.signatures) == {"serving_default"}
    function = module.signatures["serving_default"]
    assert list(function.structured_input_signature[1]) == ["features"]
    points = np.random.default_rng(8).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_allclose(function(features=points)["probabilities"],
                               probabilities(network, points), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError):
        function(features=np.zeros((5, 3), np.float32))
    classifier = tf.saved_model.load(os.path.join(export_dir, "hub", "classification"))
    np.testing.assert_allclose(classifier(points), network(points), atol=1e-5)
    with open(os.path.join(export_dir, "hub", "MODEL_CARD.md")) as f:
        assert "Not image data" in f.read()


def test_existing_export_is_refused_without_overwrite(tmp_path, capsys):
    make_run(tmp_path)
    assert export_command.main(["export", f"--model_dir={tmp_path}"]) == 0
    stale = tmp_path / "export" / "stale.txt"
    stale.write_text("from an older export")
    capsys.readouterr()
    assert export_command.main(["export", f"--model_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists; pass --overwrite" in err
    assert stale.exists()
    assert export_command.main(["export", f"--model_dir={tmp_path}", "--overwrite"]) == 0
    assert not stale.exists() and (tmp_path / "export" / "saved_model" / "saved_model.pb").exists()
    assert not glob.glob(str(tmp_path / ".export-*"))


def test_unfinished_run_is_refused(tmp_path, capsys):
    make_run(tmp_path)
    os.remove(tmp_path / "results.json")  # the run did not finish
    assert export_command.main(["export", f"--model_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no finished run (missing results.json)" in err
    assert not (tmp_path / "export").exists()
    assert export_command.main(["export"]) == 2
    assert "--model_dir is required" in capsys.readouterr().err


def test_a_failure_midway_leaves_no_half_export(tmp_path, monkeypatch):
    make_run(tmp_path)

    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "write_hub_modules", fail)
    with pytest.raises(RuntimeError):
        export.export_run(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["config.json", "dataset_info.json", "model",
                                            "results.json"]
    monkeypatch.undo()
    export.export_run(str(tmp_path))
    before = sorted(os.listdir(tmp_path / "export"))
    monkeypatch.setattr(export, "write_hub_modules", fail)
    with pytest.raises(RuntimeError):
        export.export_run(str(tmp_path), overwrite=True)
    assert sorted(os.listdir(tmp_path / "export")) == before  # the old export is untouched
    assert not glob.glob(str(tmp_path / ".export-*"))


def _files(directory):
    """Every file below `directory`, by relative path, with its bytes."""
    return {os.path.relpath(path, directory): open(path, "rb").read()
            for path in glob.glob(os.path.join(directory, "**"), recursive=True)
            if os.path.isfile(path)}


@pytest.mark.parametrize("owner,name,call", [
    (tf.saved_model, "save", 2),  # the first Hub module, after the serving SavedModel
    (files, "write_json", 2),  # a Kaggle metadata file of the Hub modules
    (os, "rename", 2),  # the new export into place, once the old one is moved aside
])
def test_a_failed_replacement_leaves_the_previous_export_intact(tmp_path, monkeypatch, owner,
                                                                name, call):
    make_run(tmp_path)
    export_dir = export.export_run(str(tmp_path))
    before = _files(export_dir)
    original, calls = getattr(owner, name), []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise OSError(errno.EIO, "simulated input/output error")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    with pytest.raises(OSError, match="simulated"):
        export.export_run(str(tmp_path), overwrite=True)
    monkeypatch.undo()
    assert len(calls) >= call
    assert _files(export_dir) == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "dataset_info.json", "export",
                                            "model", "results.json"]  # no temporary directory


def test_export_run_raises_config_errors_for_callers(tmp_path):
    with pytest.raises(ConfigError, match="no finished run"):
        export.export_run(str(tmp_path))


def test_command_line_errors_are_one_line_on_stderr(tmp_path):
    """As a command TensorFlow's start-up notices must not reach stderr either."""
    done = subprocess.run([sys.executable, "-m", "mpl_tf.export", f"--model_dir={tmp_path}"],
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_feature_network_ends_before_dropout_and_the_classifier(gray):
    network = gray[0]
    features = export.feature_network(network)
    body = features.layers[-1]
    assert body.layers[-1].name == "head_pool"
    assert not any(isinstance(layer, (keras.layers.Dropout, keras.layers.Dense))
                   for layer in body.layers)
    batch = images((2, 8, 8, 1)).astype(np.float32)
    pooled = keras.Model(network.layers[-1].input,
                         network.layers[-1].get_layer("head_pool").output)
    normalized = network.get_layer("normalize")(batch)
    np.testing.assert_allclose(features(batch), pooled(normalized), atol=1e-5)


def test_the_end_of_training_hands_over_its_config_and_network(tmp_path):
    """orchestrate's export: the config and served network it holds, not config.json and the
    weights file (here both stale); the network may be of another precision or batch-norm
    kernel (an exact-feedback student) than the float32 network the export builds."""
    make_run(tmp_path, model="cnn", input_shape=(8, 8, 1), num_classes=10)
    config = export.Config.from_json(str(tmp_path / "config.json")).replace(
        method="uda", model="cnn", finetune_steps=7)
    info = run_dir.read_json(str(tmp_path / "dataset_info.json"))
    held = models.build(config, (8, 8, 1), 10, seed=5, name="student_ema",
                        dtype="mixed_float16", pixel_mean=info["pixel_mean"],
                        pixel_std=info["pixel_std"], differentiated_twice=True)
    export_dir = export.export_run(str(tmp_path), overwrite=True, config=config, network=held)
    pixels = images((3, 8, 8, 1), seed=4).astype(np.float32)
    classifier = tf.saved_model.load(os.path.join(export_dir, "hub", "classification"))
    reference = models.build(config, (8, 8, 1), 10, seed=0, name="reference",
                             pixel_mean=info["pixel_mean"], pixel_std=info["pixel_std"])
    reference.set_weights(held.get_weights())
    np.testing.assert_allclose(classifier(np.repeat(pixels, 3, -1) / 255.0),
                               reference(pixels, training=False), atol=1e-5)
    with open(os.path.join(export_dir, "hub", "MODEL_CARD.md")) as f:
        card = f.read()
    assert "UDA" in card and "finetuned for 7 steps" in card
