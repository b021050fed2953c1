"""Exporting a finished run for serving and reuse (the library; `mpl_tf/export.py` is its
command, `python -m mpl_tf.export --model_dir=DIR`, which reads the run back from DIR; training
calls `export_run` too, handing over the config and served network it holds).

DIR/export/saved_model (for TF Serving, with the preprocessing inside) and
DIR/export/hub/{classification,feature-vector} (TF Hub reusable SavedModels, with MODEL_CARD.md
and Kaggle Models metadata) follow the contract the README states once ("Serve it": the
signatures, their inputs and outputs); each run's model card restates it with the run's sizes.
Inputs are declared with unknown shape and checked inside, so a wrong rank, channel count or
size, or an empty batch, is an InvalidArgumentError naming the expected shape rather than a
failure to bind the call; so is a float input holding NaN or Inf (which would come back as NaN
probabilities), in every signature and in the Hub modules' `__call__`.

Everything is written to a temporary directory first and renamed into place, so a failed export
leaves either the old export or none, never half of one.
"""

import dataclasses
import os
import shutil
import tempfile

from mpl_tf.durable import quiet

tf = quiet.import_tensorflow()  # before anything below imports it, so importing this is quiet

import keras  # noqa: E402  (TensorFlow is loaded, so Keras' import prints nothing)

from mpl_tf.serving import model_card  # noqa: E402
from mpl_tf import models  # noqa: E402
from mpl_tf.durable import marker  # noqa: E402
from mpl_tf.durable import readback  # noqa: E402
from mpl_tf.durable import files
from mpl_tf.durable import run_dir  # noqa: E402
from mpl_tf.config import Config  # noqa: E402
from mpl_tf.errors import ConfigError, DamagedFile  # noqa: E402

EXPORT_DIR = run_dir.EXPORT
HUB_VARIANTS = ("classification", "feature-vector")
TOP_K = 5


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run's config, dataset info, results and served network (weights loaded)."""

    model_dir: str
    config: Config
    info: dict
    results: dict
    network: keras.Model

    @property
    def is_image(self):
        return len(self.info["input_shape"]) == 3


def check_finished(model_dir):
    """Raises ConfigError unless `model_dir` holds a finished run (results.json, weights)."""
    needed = (run_dir.RESULTS, run_dir.CONFIG, run_dir.DATASET_INFO, run_dir.SERVING_WEIGHTS)
    if marker.exists(model_dir):
        marker.read(model_dir)  # damaged: one line
    for name in needed:  # recorded by the run when it finished, and lost since: say so
        readback.verify(os.path.join(model_dir, name), model_dir)
    missing = [name for name in needed if not os.path.exists(os.path.join(model_dir, name))]
    if missing:
        raise ConfigError(f"--model_dir={model_dir} holds no finished run (missing "
                          f"{', '.join(missing)}); train it first with python -m mpl_tf.main")


def load_run(model_dir, config=None, network=None):
    """The finished run in `model_dir`, its served network rebuilt (float32, outside any
    distribution strategy) with its weights loaded: from model_dir's files, or from the `config`
    and served `network` given (what the training that just finished holds)."""
    check_finished(model_dir)
    config = config or readback.read_config(model_dir)
    info = readback.read_run_json(model_dir, run_dir.DATASET_INFO)
    results = readback.read_run_json(model_dir, run_dir.RESULTS)

    def serving_network(keras_batch_norm=False):
        return models.build(config, tuple(info["input_shape"]), info["num_classes"], seed=0,
                            name="serving", pixel_mean=info["pixel_mean"],
                            pixel_std=info["pixel_std"], differentiated_twice=keras_batch_norm)

    if network is not None:
        serving = serving_network()
        serving.set_weights(network.get_weights())
        return Run(model_dir, config, info, results, serving)
    try:
        serving = readback.load_weights(serving_network(), model_dir, run_dir.SERVING_WEIGHTS)
    except DamagedFile:  # an exact-feedback run served unfinetuned has Keras' batch norm
        serving = readback.load_weights(serving_network(keras_batch_norm=True), model_dir,
                                        run_dir.SERVING_WEIGHTS)
    return Run(model_dir, config, info, results, serving)


def export_run(model_dir, overwrite=False, config=None, network=None):
    """Writes DIR/export (serving SavedModel, Hub modules, model card); returns its path.

    The run's config and served network are read from DIR (config.json, the serving weights)
    unless given: the end of training hands over its own `config` and served `network`.
    Refuses (ConfigError) a run that has not finished, and an existing export unless
    `overwrite`.
    """
    target = os.path.join(model_dir, EXPORT_DIR)
    check_finished(model_dir)
    if os.path.exists(target) and not overwrite:
        raise ConfigError(f"{target} already exists; pass --overwrite to replace it")
    run = load_run(model_dir, config, network)
    channels = run.info["input_shape"][-1]
    if run.is_image and channels not in (1, 3):
        raise ConfigError(f"cannot export a network trained on {channels}-channel images: "
                          "serving takes RGB images, adapted to 1 or 3 channels only")
    staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    try:
        run_dir.open_directory_mode(staging)
        write_serving_model(run, os.path.join(staging, "saved_model"))
        write_hub_modules(run, os.path.join(staging, "hub"))
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if marker.recorded(model_dir, run_dir.RESULTS) is not None:  # a finished run's record
        marker.record(model_dir, [EXPORT_DIR], forget=[EXPORT_DIR])
    return target


def _move_into_place(staging, target):
    """Renames `staging` to `target`; an old `target` is moved aside first (and back if the
    rename fails) and deleted last."""
    if not os.path.exists(target):
        os.rename(staging, target)
        return
    old = os.path.join(tempfile.mkdtemp(prefix=".export-old-", dir=os.path.dirname(target)),
                       EXPORT_DIR)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        os.rmdir(os.path.dirname(old))
        raise
    shutil.rmtree(os.path.dirname(old))


# --- the serving SavedModel --------------------------------------------------------------------

def write_serving_model(run, path):
    """The TF Serving SavedModel: signatures with preprocessing and top-k outputs inside."""
    network, shape = run.network, tuple(run.info["input_shape"])
    names = tf.constant(run.info["class_names"])
    module = tf.train.Checkpoint()
    module.variables = [v.value for v in network.variables]  # saved with the functions

    def predict(inputs):
        return _outputs(network(inputs, training=False), names)

    float_name = "images" if run.is_image else "features"
    float_what = (f"float32 images [N, {', '.join(map(str, shape))}] on the 0-255 scale"
                  if run.is_image else f"float32 features [N, {shape[0]}]")

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name=float_name)])
    def serve_float(inputs):
        return predict(finite(_checked(inputs, (None, *shape), float_what), float_name))

    module.serve_float = serve_float
    if not run.is_image:
        tf.saved_model.save(module, path,
                            signatures={"serving_default": serve_float.get_concrete_function()})
        return
    height, width, channels = shape

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="images")])
    def serve(images):
        images = _checked(images, (None, None, None, 3), "uint8 images [N, H, W, 3], N, H, W > 0")
        x = _to_size(tf.cast(images, tf.float32), height, width)
        return predict(_to_channels(x, channels))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")])
    def serve_image_bytes(image_bytes):
        image_bytes = _checked(image_bytes, (None,), "encoded images [N], N > 0")

        def decode(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            return _to_size(tf.cast(image, tf.float32)[None], height, width)[0]

        x = tf.map_fn(decode, image_bytes,
                      fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32))
        return predict(_to_channels(x, channels))

    module.serve, module.serve_image_bytes = serve, serve_image_bytes
    tf.saved_model.save(module, path, signatures={
        "serving_default": serve.get_concrete_function(),
        "serve_image_bytes": serve_image_bytes.get_concrete_function(),
        "serve_float": serve_float.get_concrete_function()})


def _checked(tensor, shape, what):
    """`tensor` with the static `shape` (None: any size), after one run-time assertion of its
    rank, its fixed sizes and that it is not empty; the reshape waits for the assertion, so a
    bad input fails there, with a message naming the expected shape."""
    actual = tf.shape(tensor)
    padded = tf.concat([actual, tf.zeros([len(shape)], tf.int32)], 0)  # indexable at any rank
    ok = tf.logical_and(tf.equal(tf.rank(tensor), len(shape)), tf.greater(tf.size(tensor), 0))
    for i, size in enumerate(shape):
        if size is not None:
            ok = tf.logical_and(ok, tf.equal(padded[i], size))
    check = tf.debugging.Assert(ok, [f"expected {what}; got shape", actual], summarize=8)
    with tf.control_dependencies([check]):
        dims = tf.stack([padded[i] if size is None else size for i, size in enumerate(shape)])
        return tf.ensure_shape(tf.reshape(tensor, dims), shape)


def finite(inputs, name):
    """`inputs` after a run-time check that every value is finite: a NaN or Inf would otherwise
    come back as NaN probabilities, a silent non-answer; now the call fails (InvalidArgument)
    saying so. uint8 images and decoded bytes cannot hold either."""
    return tf.debugging.assert_all_finite(
        inputs, f"{name} must be finite numbers; got NaN or Inf (a missing value, or a division "
        "by zero upstream?)")


def _to_size(images, height, width):
    """float [N, h, w, 3] -> [N, height, width, 3]: unchanged at the training size, otherwise
    resized (antialiased) to cover it and centre-cropped."""

    def cover_and_crop():
        size = tf.cast(tf.shape(images)[1:3], tf.float32)
        target = tf.constant([height, width], tf.float32)
        scale = tf.reduce_max(target / size)
        covering = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), [height, width])
        resized = tf.image.resize(images, covering, antialias=True)
        return tf.image.resize_with_crop_or_pad(resized, height, width)

    same = tf.reduce_all(tf.equal(tf.shape(images)[1:3], [height, width]))
    return tf.ensure_shape(tf.cond(same, lambda: images, cover_and_crop),
                           [None, height, width, 3])


def _to_channels(images, channels):
    """RGB -> the training channel count: grayscale networks get the mean of R, G and B."""
    return tf.reduce_mean(images, axis=-1, keepdims=True) if channels == 1 else images


def _outputs(logits, class_names):
    probabilities = tf.nn.softmax(logits)
    top = tf.math.top_k(probabilities, k=min(TOP_K, int(logits.shape[-1])))
    return {"probabilities": probabilities, "top_k_classes": top.indices,
            "top_k_probabilities": top.values,
            "top_k_class_names": tf.gather(class_names, top.indices)}


# --- the TF Hub modules ------------------------------------------------------------------------

def write_hub_modules(run, path):
    """hub/{classification,feature-vector}: reusable SavedModels, each with a copy of the model
    card and its Kaggle instance metadata; hub/ itself holds the card and model metadata."""
    shape = tuple(run.info["input_shape"])
    spec = tf.TensorSpec([None, *shape[:2], 3] if run.is_image else [None, *shape], tf.float32)
    channels = shape[-1]

    def network_inputs(inputs):
        inputs = finite(inputs, "inputs")
        return _to_channels(inputs * 255.0, channels) if run.is_image else inputs

    outputs = {"classification": ("logits", run.network),
               "feature-vector": ("feature_vector", feature_network(run.network))}
    card = model_card.markdown(run.config, run.info, run.results, _num_labeled(run),
                               _trained_version(run))
    os.makedirs(path)
    files.write_text(os.path.join(path, "MODEL_CARD.md"), card)
    files.write_json(os.path.join(path, "model-metadata.json"),
                model_card.model_metadata(run.config, run.info, card))
    for variant in HUB_VARIANTS:
        output_name, part = outputs[variant]
        variant_dir = os.path.join(path, variant)
        _save_reusable(part, network_inputs, spec, output_name, variant_dir)
        files.write_text(os.path.join(variant_dir, "MODEL_CARD.md"), card)
        files.write_json(os.path.join(variant_dir, "model-instance-metadata.json"),
                    model_card.instance_metadata(run.config, run.info, run.results, variant))


def _save_reusable(part, network_inputs, spec, output_name, path):
    """A Keras 3 network as a TF Hub reusable SavedModel: a tf.train.Checkpoint (whose
    `variables` can be assigned, unlike tf.Module's) with `__call__` traced for training=False
    and True, so hub.KerasLayer(trainable=True) can fine-tune it; weight decay was the
    optimizer's, so there are no regularization losses. `serving_default` serves it too."""
    module = tf.train.Checkpoint()
    module.variables = [v.value for v in part.variables]
    module.trainable_variables = [v.value for v in part.trainable_variables]
    module.regularization_losses = []
    call = tf.function(lambda inputs, training=False: part(network_inputs(inputs),
                                                           training=training))
    for training in (False, True):
        call.get_concrete_function(spec, training=training)
    module.__call__ = call
    serve = tf.function(lambda inputs: {output_name: call(inputs, training=False)},
                        input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name="inputs")])
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def feature_network(network):
    """The network up to the input of its final Dense (skipping dropout before it), sharing its
    layers and weights. `models.build` wraps the bare network after a Normalization layer; that
    wrapper is a chain, so its layers are re-applied in order up to the nested body."""
    head = network.layers[-1]
    if isinstance(head, keras.Model):
        inputs = keras.Input(network.input_shape[1:], dtype=network.input.dtype)
        x = inputs
        for layer in network.layers[1:-1]:
            x = layer(x)
        return keras.Model(inputs, feature_network(head)(x), name=f"{network.name}_features")
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(f"{network.name} does not end with a Dense classifier")
    features = head.input
    for layer in reversed(network.layers):
        if isinstance(layer, keras.layers.Dropout) and layer.output is features:
            features = layer.input
    return keras.Model(network.inputs, features, name=f"{network.name}_features")


def _trained_version(run):
    """The mpl_tf version the run's versions.json records (None when it records none)."""
    path = os.path.join(run.model_dir, run_dir.VERSIONS)
    readback.verify(path, run.model_dir)
    return (readback.read_run_json(run.model_dir, run_dir.VERSIONS).get("mpl_tf")
            if os.path.exists(path) else None)


def _num_labeled(run):
    """The number of labeled examples the run used (labeled_indices.json when present)."""
    path = os.path.join(run.model_dir, run_dir.LABELED_INDICES)
    readback.verify(path, run.model_dir)
    if os.path.exists(path):
        return len(readback.read_run_json(run.model_dir, run_dir.LABELED_INDICES)["indices"])
    return run.results.get("num_labeled", run.config.num_labeled)
