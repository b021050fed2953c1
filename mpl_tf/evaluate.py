"""Top-1 and top-5 accuracy of a finished run or an exported SavedModel on a dataset split:

    python -m mpl_tf.evaluate --model_dir=DIR [--split=test] [--output=FILE]
    python -m mpl_tf.evaluate --saved_model=DIR/export/saved_model --dataset=NAME [data flags]

(installed: `mpl-tf-evaluate`; either form takes a recipe's data flags as `--recipe=NAME`).

A run is evaluated on its own data (its config.json rebuilds the same split), and so is a
SavedModel inside its run directory (RUN/export/saved_model); any training flag given on the
command line (--dataset, --data_dir, --split_seed, ...) overrides the saved value, but the
validation split must come out as the run's recorded one (labeled_indices.json), or it is
refused: another draw can contain the run's labeled training examples.
A SavedModel is fed the split's arrays through its `serve_float` signature, which takes them
exactly as training did; a streamed split (folder:PATH, ImageNet) is fed batch by batch in its
evaluation view, the one training's own accuracies use. With K < 5 classes top-5 accuracy is top-K accuracy, that is 1.
"""

import dataclasses
import errno
import json
import os
import sys

import numpy as np
from absl import flags

from mpl_tf import cli
from mpl_tf.durable import quiet
from mpl_tf import config as config_lib
from mpl_tf.serving import export
from mpl_tf import recipes
from mpl_tf.durable import marker
from mpl_tf.durable import readback
from mpl_tf.durable import files
from mpl_tf.durable import run_dir
from mpl_tf.errors import ConfigError, UnwritableOutput

tf = quiet.import_tensorflow()

SPLITS = ("val", "test")
TOP_K = 5


def accuracies(probabilities_fn, images, labels, batch_size):
    """{"top1_accuracy", "top5_accuracy", "num_examples"} of `probabilities_fn` ([B, ...] numpy
    -> [B, K] probabilities) on the arrays, evaluated `batch_size` examples at a time."""
    return batch_accuracies(probabilities_fn, (
        (images[start:start + batch_size], labels[start:start + batch_size])
        for start in range(0, len(labels), batch_size)))


def batch_accuracies(probabilities_fn, batches):
    """`accuracies` over an iterable of (images, labels) batches, e.g. a streamed split."""
    top1 = top5 = count = 0
    for images, labels in batches:
        probabilities = np.asarray(probabilities_fn(images))
        truth = np.asarray(labels)[:, None]
        ranked = np.argsort(-probabilities, axis=-1, kind="stable")
        top1 += int(np.sum(ranked[:, :1] == truth))
        top5 += int(np.sum(ranked[:, :TOP_K] == truth))
        count += len(truth)
    return {"top1_accuracy": top1 / count, "top5_accuracy": top5 / count,
            "num_examples": count}


def run_probabilities(model_dir):
    """The served network of the finished run in `model_dir`, as numpy -> probabilities; images
    of another shape than the run's are a ConfigError (as `saved_model_probabilities` says), not
    Keras' traceback."""
    run = export.load_run(model_dir)
    expected = tuple(run.info["input_shape"])

    def probabilities(images):
        if tuple(images.shape[1:]) != expected:
            raise ConfigError(f"--model_dir={model_dir} cannot take inputs of shape "
                              f"{tuple(images.shape[1:])}: its network takes {expected} "
                              f"({os.path.join(model_dir, run_dir.DATASET_INFO)}); drop the "
                              "data flags that change them")
        return tf.nn.softmax(run.network(images, training=False)).numpy()

    return probabilities


def saved_model_probabilities(path):
    """An mpl_tf serving SavedModel (DIR/export/saved_model) as numpy -> probabilities."""
    module = readback.load_saved_model(path)
    if not hasattr(module, "serve_float"):
        raise ConfigError(f"--saved_model={path} has no serve_float function: pass the "
                          "serving export DIR/export/saved_model, not a Hub module")

    def probabilities(images):
        try:
            with quiet.stderr_silenced():  # TensorFlow's runtime also logs the error there
                outputs = module.serve_float(tf.constant(images, tf.float32))
            return outputs["probabilities"].numpy()
        except tf.errors.InvalidArgumentError as e:
            raise ConfigError(f"--saved_model={path} cannot take inputs of shape "
                              f"{tuple(images.shape[1:])}: {_assertion(e)}") from None

    return probabilities


def _assertion(error):
    """The line of an InvalidArgumentError that says what went wrong."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    return next((line for line in lines if "assertion failed" in line), lines[-1])


def evaluate(config, split, model_dir=None, saved_model=None, run=None):
    """Top-1/top-5 accuracy of the run in `model_dir` or of `saved_model` on `split` of the data
    `config` describes; the JSON-ready dict that the command line writes. `run`: the run
    directory whose recorded split the validation split must be (see `check_split`)."""
    if split not in SPLITS:
        raise ConfigError(f"--split={split} is not valid; valid values: {', '.join(SPLITS)}")
    from mpl_tf.data import sources  # it imports TensorFlow: after the quiet import above

    data = sources.load(config)
    if split == "val":
        check_split(data, run, saved_model or model_dir)
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    predict = saved_model_probabilities(saved_model) if saved_model else run_probabilities(
        model_dir)
    if images is None:  # streamed (folders, ImageNet): its evaluation view, as training scores
        from mpl_tf.data import pipeline

        report = batch_accuracies(predict, (
            (x.numpy(), y.numpy())
            for x, y in pipeline.eval_dataset(data, split, config.eval_batch_size)))
    else:
        report = accuracies(predict, images, labels, config.eval_batch_size)
    return {"dataset": config.dataset, "split": split,
            "model": os.path.abspath(saved_model or model_dir),
            "top_k": min(TOP_K, data.num_classes), **report}


def check_split(data, run, what):
    """Raises ConfigError unless `data`'s validation split is the one recorded in the run
    directory `run` (labeled_indices.json): another draw can hold the run's labeled training
    examples, and its accuracy would be no validation at all."""
    path = os.path.join(run or "", run_dir.LABELED_INDICES)
    if run is not None:
        readback.verify(path, run)  # recorded by the run, and lost since: say so
    if run is None or not os.path.exists(path):
        raise ConfigError(f"--split=val of {what} needs the run's recorded split (no "
                          f"{path if run else 'run directory'}): evaluate RUN/export/saved_model "
                          "inside its run directory, or --model_dir=RUN, or use --split=test")
    recorded = readback.read_run_json(run, run_dir.LABELED_INDICES)
    val = None if data.val_indices is None else data.val_indices.tolist()
    if (recorded["dataset"] != data.name or recorded["indices"] != data.labeled_indices.tolist()
            or recorded.get("val_indices", val) != val):  # older records lack val_indices
        raise ConfigError(f"--split=val: these data flags draw a different validation split from "
                          f"the one {run} trained with ({path}); drop the flags that differ "
                          "from its config.json")


def run_directory(values):
    """The run being evaluated: --model_dir, or the run directory an exported --saved_model
    sits in (RUN/export/saved_model, with RUN/config.json), else None."""
    if values.model_dir:
        return values.model_dir
    run = os.path.dirname(os.path.dirname(os.path.abspath(values.saved_model)))
    if marker.exists(run):
        return run
    return run if os.path.exists(os.path.join(run, run_dir.CONFIG)) else None


def _config(values, run):
    """The data config: the run's own (overridden by flags given explicitly) or the flags';
    checked as main checks its flags (`Config.validate`), so a bad value is one line rather than
    a traceback from the data or the batching."""
    given = config_lib.Config.from_flags(values)
    if not run:
        return given.validate()
    overrides = {field.name: getattr(given, field.name) for field in dataclasses.fields(given)
                 if field.name != "model_dir" and values[field.name].present}
    return readback.read_config(run).replace(**overrides).validate()


def main(argv):
    """Evaluates and prints the JSON (and writes --output); a failure is one line on stderr
    and exit status 2 (`cli.run`)."""
    values = flags.FlagValues()
    flags.DEFINE_string("saved_model", None, "An exported DIR/export/saved_model to evaluate "
                        "instead of --model_dir.", flag_values=values)
    flags.DEFINE_enum("split", "test", SPLITS, "Which split to evaluate.", flag_values=values)
    flags.DEFINE_string("output", None, "Also write the JSON here.", flag_values=values)
    values.append_flag_values(flags.FLAGS)  # every training flag: data, --model_dir, batch size
    for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
        for flag in module_flags:  # listed by --helpfull under the module defining them
            values.register_flag_by_module(module, flag)
    return cli.run(_evaluate, values, argv, __doc__, expand=recipes.expand, tensorflow=True)


def _evaluate(values):
    if bool(values.model_dir) == bool(values.saved_model):
        raise ConfigError("pass exactly one of --model_dir (a finished run) and "
                          "--saved_model (an exported DIR/export/saved_model)")
    if values.model_dir:
        export.check_finished(values.model_dir)
    if values.output:
        _check_output(values.output)
    run = run_directory(values)
    report = evaluate(_config(values, run), values.split, values.model_dir, values.saved_model,
                      run)
    print(json.dumps(report, indent=2, sort_keys=True))  # first: kept if the write fails
    if values.output:
        try:
            files.write_json(values.output, report)
        except OSError as e:
            raise UnwritableOutput(f"cannot write --output={values.output}: {e.strerror}"
                                   ) from None
    return 0


# The keys of every report evaluate writes: an existing --output is replaced only if it has them.
REPORT_KEYS = ("dataset", "split", "model", "top_k", "top1_accuracy", "top5_accuracy")


def _check_output(output):
    """Raises ConfigError (before evaluating) if `output` exists and is not a report evaluate
    wrote: another file, or a run's results.json, is never replaced; and UnwritableOutput if it
    is a directory or its directory does not exist (found after evaluating, the report was
    lost)."""
    parent = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(output) or not os.path.isdir(parent):
        reason = (errno.EISDIR if os.path.isdir(output) else errno.ENOTDIR
                  if os.path.lexists(parent) else errno.ENOENT)
        raise UnwritableOutput(f"cannot write --output={output}: {os.strerror(reason)}")
    if not os.path.lexists(output):
        return
    try:
        with open(output) as f:
            existing = json.load(f)
    except (OSError, ValueError):
        existing = None
    if not (isinstance(existing, dict) and all(key in existing for key in REPORT_KEYS)):
        raise ConfigError(f"--output={output} exists and is not a report of evaluate (which "
                          "replaces only its own); choose another --output")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
