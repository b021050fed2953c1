"""The model card (Markdown) and the Kaggle Models metadata of an exported run, built from the
run's own files so every number in them is the one the run measured. They are published
(`publish` uploads them with the Hub modules), so they name a local image folder by its own
name only (`public_name`), never by its path on this machine."""

import os
import re

from mpl_tf import method as methods
from mpl_tf.data import sources

LICENSE = "Apache 2.0"  # Kaggle's name for it; the card links the SPDX id Apache-2.0
FRAMEWORK = "tensorFlow2"
# kagglehub.model_upload takes the owner from its handle; for the Kaggle CLI, edit this in.
OWNER_PLACEHOLDER = "INSERT_OWNER_SLUG_HERE"

CITATION = """@InProceedings{Pham_2021_CVPR,
  author    = {Pham, Hieu and Dai, Zihang and Xie, Qizhe and Le, Quoc V.},
  title     = {Meta Pseudo Labels},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern
               Recognition (CVPR)},
  month     = {June},
  year      = {2021},
  pages     = {11557--11568}
}"""

# results.json keys shown in the evaluation table, in order, with their labels.
METRICS = (("val_accuracy", "Validation accuracy (top-1)"),
           ("test_accuracy", "Test accuracy (top-1)"),
           ("val_accuracy_before_finetune", "Validation accuracy before finetuning"),
           ("test_accuracy_before_finetune", "Test accuracy before finetuning"),
           ("raw_test_accuracy", "Test accuracy of the raw (non-EMA) network"),
           ("teacher_test_accuracy", "Test accuracy of the MPL teacher"))

MAX_CLASS_NAMES = 20


def slug(text):
    """A Kaggle-style slug: lowercase letters, digits and single hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")[:50]


def public_name(dataset):
    """The dataset's name as published: `folder:PATH` becomes `folder:NAME`, NAME the folder's
    own name (the last part of its path), or "a local image folder" when the path has none;
    other names are as they are."""
    root = sources.folder_root(dataset)
    if root is None:
        return dataset
    name = os.path.basename(os.path.normpath(os.path.expanduser(root)))
    return f"{sources.FOLDER_PREFIX}{name}" if name not in ("", ".", "..", os.sep) else (
        "a local image folder")


def model_slug(config, info):
    return slug(f"mpl-{public_name(info['name'])}-{config.model}-{config.method}")


def title(config, info):
    return (f"Meta Pseudo Labels: {config.model} on {public_name(info['name'])} "
            f"({config.method})")


def markdown(config, info, results, num_labeled, version=None):
    """The card: what the model is, its data and split, the run's metrics, the input and output
    contract, how to load it, license and citation. `version`: the mpl_tf version that trained
    it (versions.json; None for runs from before versions.json recorded it)."""
    image = len(info["input_shape"]) == 3
    sections = [f"# {title(config, info)}", _summary(config, info, image, version),
                _data(config, info, results, num_labeled), _evaluation(results),
                _contract(info, image), _usage(info, image), _limitations(info, image),
                "## License\n\nApache-2.0 (https://www.apache.org/licenses/LICENSE-2.0).",
                f"## Citation\n\n```bibtex\n{CITATION}\n```"]
    return "\n\n".join(sections) + "\n"


def model_metadata(config, info, card):
    """`model-metadata.json` as `kaggle models create -p DIR` reads it."""
    return {"ownerSlug": OWNER_PLACEHOLDER, "title": title(config, info),
            "slug": model_slug(config, info),
            "subtitle": f"{info['num_classes']}-class classifier trained with mpl_tf",
            "isPrivate": True, "description": card, "licenseName": LICENSE,
            "publishTime": "", "provenanceSources": "mpl_tf run (see the model card)"}


def instance_metadata(config, info, results, variant):
    """`model-instance-metadata.json` of one variant, as `kaggle models instances create -p`
    reads it (`${PATH}` is Kaggle's template for where the files are mounted)."""
    output = "logits" if variant == "classification" else "penultimate features"
    return {"ownerSlug": OWNER_PLACEHOLDER, "modelSlug": model_slug(config, info),
            "instanceSlug": variant, "framework": FRAMEWORK,
            "overview": f"{variant}: {output} of {config.model} trained with {config.method} "
                        f"on {public_name(info['name'])}; test accuracy "
                        f"{_percent(results.get('test_accuracy'))}.",
            "usage": "```python\nimport tensorflow as tf\n\nmodule = tf.saved_model.load("
                     "\"${PATH}\")\noutputs = module(inputs, training=False)\n```",
            "licenseName": LICENSE, "fineTunable": True,
            "trainingData": [public_name(info["name"])],
            "modelInstanceType": "Unspecified", "baseModelInstance": "",
            "externalBaseModelUrl": ""}


def _summary(config, info, image, version):
    kind = "image classifier" if image else (
        f"classifier of {info['input_shape'][0]}-dimensional feature vectors")
    trainer = methods.get(config.method)
    served = f"the exponential moving average of the {trainer.SERVED}" if config.ema_decay else (
        f"the {trainer.SERVED}'s")
    if config.finetune_steps:
        served += f", then finetuned for {config.finetune_steps} steps on the labeled examples"
    by = f"mpl_tf {version}" if version else "mpl_tf"
    return (f"A {info['num_classes']}-class {kind} ({config.model}) trained with "
            f"{trainer.DESCRIPTION} by {by}, a TensorFlow 2 / Keras 3 "
            f"implementation of Meta Pseudo Labels (Pham et al., CVPR 2021). The weights are "
            f"{served}.\n\n"
            "| Variant | Directory | Output |\n|---|---|---|\n"
            "| classification | `classification/` | logits `[N, num_classes]` |\n"
            "| feature-vector | `feature-vector/` | features `[N, F]` from the layer before the "
            "classifier (before any dropout) |\n\n"
            "Both are TF Hub reusable SavedModels (`__call__(inputs, training)`, `variables`, "
            "`trainable_variables`, `regularization_losses`), fine-tunable. For serving with "
            "preprocessing inside (uint8 images of any size, encoded JPEG/PNG bytes), use the "
            "`saved_model/` directory the export writes next to this one.")


def _data(config, info, results, num_labeled):
    names = info["class_names"]
    shown = ", ".join(names[:MAX_CLASS_NAMES]) + (", ..." if len(names) > MAX_CLASS_NAMES
                                                  else "")
    asked = (f"`--label_fraction={config.label_fraction:g}`" if config.label_fraction
             else f"`--num_labeled={config.num_labeled}`")
    lines = [f"- Dataset: `{public_name(config.dataset)}` ({info['num_classes']} classes: "
             f"{shown}).",
             f"- Labeled examples: {num_labeled} ({asked}), class-balanced, chosen with split "
             f"seed {config.split_seed}; the rest of the training set is used unlabeled.",
             "- Splits: the validation split serves model selection only; the test split only "
             "the reported numbers.",
             f"- Training: {results.get('train_steps', config.train_steps)} steps, seed "
             f"{config.seed} (initialisation, augmentation, label sampling).",
             f"- Input shape during training: `{tuple(info['input_shape'])}`; augmentation "
             f"family `{info['view']}`."]
    own = methods.get(config.method).FLAGS
    if own:
        lines.append(f"- Settings of `--method={config.method}`: "
                     + ", ".join(f"`--{name}={getattr(config, name)}`" for name in own) + ".")
    return "## Training data\n\n" + "\n".join(lines)


def _evaluation(results):
    rows = [f"| {label} | {_percent(results[key])} |" for key, label in METRICS
            if results.get(key) is not None]
    return ("## Evaluation\n\nMeasured by the training run (`results.json`):\n\n"
            "| Metric | Value |\n|---|---|\n" + "\n".join(rows))


def _contract(info, image):
    k = min(5, info["num_classes"])
    if not image:
        return ("## Inputs and outputs\n\nNot image data: inputs are float32 features "
                f"`[N, {info['input_shape'][0]}]` in the units the model was trained on "
                "(the TF Hub image conventions do not apply). `classification` returns logits "
                f"`[N, {info['num_classes']}]`; apply a softmax for probabilities.")
    height, width, channels = info["input_shape"]
    gray = (" The network was trained on one (grayscale) channel: it sees the mean of R, G "
            "and B, which is exact for gray images stored as RGB.") if channels == 1 else ""
    return ("## Inputs and outputs\n\n"
            f"- Hub modules: float32 images `[N, {height}, {width}, 3]` with values in [0, 1] "
            "(TF Hub image conventions); normalisation happens inside." + gray + "\n"
            f"- `classification` returns logits `[N, {info['num_classes']}]`; "
            "`feature-vector` returns `[N, F]` features.\n"
            "- Serving SavedModel (`saved_model/`): `serving_default` takes uint8 images "
            "`[N, H, W, 3]` of any size (resized to cover "
            f"{height}x{width} and centre-cropped), `serve_image_bytes` encoded JPEG/PNG "
            "strings `[N]`; both return `probabilities`, and `top_k_classes`, "
            f"`top_k_probabilities`, `top_k_class_names` for the top {k}.")


def _usage(info, image):
    if image:
        height, width = info["input_shape"][:2]
        inputs = (f"inputs = tf.zeros([1, {height}, {width}, 3])  "
                  "# float32 RGB in [0, 1]\n")
    else:
        inputs = f"inputs = tf.zeros([1, {info['input_shape'][0]}])  # float32 features\n"
    return ("## Usage\n\n"
            "TensorFlow:\n\n```python\nimport tensorflow as tf\n\n" + inputs +
            "module = tf.saved_model.load(\"classification\")\n"
            "logits = module(inputs, training=False)\n```\n\n"
            "TF Hub (`tensorflow_hub` 0.16 needs Keras 2: `pip install tf-keras`):\n\n"
            "```python\nimport tensorflow_hub as hub\nimport tf_keras\n\n"
            "model = tf_keras.Sequential([\n"
            "    hub.KerasLayer(\"feature-vector\", trainable=True),\n"
            "    tf_keras.layers.Dense(NUM_NEW_CLASSES),\n])\n```\n\n"
            "Keras 3 (inference):\n\n```python\nimport keras\n\n"
            "layer = keras.layers.TFSMLayer(\"classification\", "
            "call_endpoint=\"serving_default\")\n"
            "logits = layer(inputs)[\"logits\"]\n```")


def _limitations(info, image):
    text = ("## Limitations\n\nTrained from scratch on a small labeled subset of one dataset: "
            "expect the reported accuracy only on data like that dataset's test split.")
    if image:
        text += (" Images unlike the training images (other sizes, aspect ratios, colours or "
                 "subjects) are resized and classified into the training classes regardless.")
    return text


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}% ({value:.4f})"
