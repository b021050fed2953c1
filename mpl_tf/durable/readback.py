"""Reading back what mpl_tf wrote, the one way every command does it: a file that is missing,
damaged (not what its kind must hold: truncated, garbage) or another run's (its sha256 differs
from the one the run's marker records, see `marker.py`) is an `errors.DamagedFile` whose one
line names the file and what to do, never a traceback, and never read as if it were fine.

`read_json` (with a `check` of the contents), `read_run_json` (a run's own JSON files, with
their checks and what to do from `RUN_FILES`), `read_config`, `load_weights`,
`load_saved_model` and `verify` (the marker's record only) are the helpers.
"""

import dataclasses
import numbers
import os

from mpl_tf.durable import files
from mpl_tf.durable import marker
from mpl_tf.errors import DamagedFile

RESTORE = ("restore it from a copy of the run, or train again into a new directory (or with "
           "--overwrite)")
EXPORT_TODO = "export the run again (python -m mpl_tf.export --model_dir=RUN --overwrite)"


def verify(file_path, run=None):
    """Raises DamagedFile if the marker of the run directory `run` records `file_path` (a path
    inside it) with another sha256, or records it and it is gone."""
    if not run or not marker.exists(run):
        return
    relative = os.path.relpath(file_path, run)
    expected = marker.recorded(run, relative)
    if expected is None:
        return
    todo = what_to_do(relative).replace("RUN", run)
    if not os.path.exists(file_path):
        raise DamagedFile(f"{file_path} is missing (the run recorded it in {marker.NAME}): "
                          f"{todo}")
    if os.path.isdir(file_path) or marker.file_hash(file_path) != expected:
        raise DamagedFile(f"{file_path} is not the file the run wrote (its sha256 differs from "
                          f"the one {marker.NAME} records: one of them is damaged or another "
                          f"run's): {todo}")


def read_json(file_path, check=None, what_to_do=RESTORE, run=None):
    """The JSON in `file_path`, checked: verified against the marker of `run` (see `verify`),
    parsed, and `check(value)` (why it is not what the file must hold, or None) passed."""
    verify(file_path, run)
    return files.read_json(file_path, check, what_to_do)


# --- the checks of a run's JSON files ------------------------------------------------------------

def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _dict_with(**kinds):
    """A check: a JSON object whose keys `kinds` name hold values `kinds[key](value)` accepts."""

    def check(value):
        if not isinstance(value, dict):
            return "not a JSON object"
        for key, accepts in kinds.items():
            if key not in value or not accepts(value[key]):
                return f"no valid {key!r}"
        return None

    return check


# What every config.json a run has written holds, since the first version: a JSON object
# without them is another tool's (any object would pass the fields' own checks).
CORE_CONFIG_FIELDS = ("dataset", "method", "model", "seed", "train_steps")


def config_problem(value):
    """Why a config.json's contents cannot be a run's config (the core fields there, each
    field's own Spec)."""
    from mpl_tf.config import Config

    if not isinstance(value, dict):
        return "not a JSON object"
    lacking = [name for name in CORE_CONFIG_FIELDS if name not in value]
    if lacking:
        return f"not an mpl_tf config: no {', '.join(lacking)}"
    for field in dataclasses.fields(Config):
        if field.name not in value or field.name == "model_dir":
            continue
        setting = value[field.name]
        if field.name == "mlp_hidden" and isinstance(setting, list):
            setting = tuple(setting)
        spec = field.metadata["spec"]
        problem = None if spec.kind == "path" else spec.problem(setting)
        if problem:
            return f"{field.name}={setting!r} {problem}"
    return None


def attempts_problem(value):
    if not isinstance(value, list) or not all(
            isinstance(entry, dict) and _is_number(entry.get("wall_seconds")) for entry in value):
        return "not a list of attempts with wall_seconds"
    return None


def _int_list(value):
    return isinstance(value, list) and all(_is_int(v) for v in value)


def _number_list_or_none(value):
    return value is None or (isinstance(value, list) and all(_is_number(v) for v in value))


def dataset_info_problem(value):
    problem = _dict_with(num_classes=_is_int, input_shape=_int_list,
                         class_names=lambda v: isinstance(v, list),
                         pixel_mean=_number_list_or_none, pixel_std=_number_list_or_none)(value)
    if problem is None and len(value["class_names"]) != value["num_classes"]:
        return "class_names does not list num_classes names"
    return problem


# A run's JSON files: (relative path, its check, what to do when it is missing or damaged).
RUN_FILES = {
    "config.json": (config_problem, RESTORE),
    "results.json": (_dict_with(test_accuracy=_is_number, val_accuracy=_is_number), RESTORE),
    "dataset_info.json": (dataset_info_problem, RESTORE),
    "labeled_indices.json": (_dict_with(dataset=lambda v: isinstance(v, str),
                                        indices=_int_list), RESTORE),
    "versions.json": (_dict_with(), RESTORE),
    "attempts.json": (attempts_problem, RESTORE),
    os.path.join("checkpoints", "finetune", "settings.json"): (
        _dict_with(finetune_steps=_is_int, finetune_lr=_is_number,
                   finetune_batch_size=_is_int),
        "delete RUN/checkpoints/finetune to finetune from scratch"),
}


def what_to_do(relative):
    """What the user can do about the run's file `relative` being missing or damaged."""
    if relative == marker.NAME:
        return marker.TODO
    if relative.split(os.sep, 1)[0] == "export":
        return EXPORT_TODO
    return RUN_FILES.get(relative, (None, RESTORE))[1]


def read_run_json(model_dir, relative):
    """The run's JSON file `relative` (a key of `RUN_FILES`), verified and checked."""
    check, todo = RUN_FILES[relative]
    return read_json(os.path.join(model_dir, relative), check, todo.replace("RUN", model_dir),
                     run=model_dir)


def read_config(model_dir):
    """The `Config` of the run in `model_dir` (its config.json, checked and, when the run has a
    marker, matching the settings the marker records; its model_dir is where it is now)."""
    from mpl_tf.config import Config

    saved = read_run_json(model_dir, "config.json")
    check_config_identity(model_dir, saved)
    return Config.from_json(os.path.join(model_dir, "config.json"))


def check_config_identity(model_dir, saved):
    """Raises DamagedFile if `saved` (config.json's contents) is not the config the marker of
    `model_dir` records (its `config_sha256`)."""
    contents = marker.read(model_dir)
    if contents is not None and marker.config_hash(saved) != contents["config_sha256"]:
        raise DamagedFile(f"{os.path.join(model_dir, 'config.json')} is not this run's config "
                          f"(its settings differ from those {marker.NAME} records): "
                          f"{RESTORE}")


def load_weights(network, model_dir, relative):
    """Loads the run's weights file `relative` into `network`, verified; a file that cannot be
    read as its weights (truncated, another network's) is a DamagedFile."""
    file_path = os.path.join(model_dir, relative)
    verify(file_path, model_dir)
    if not os.path.exists(file_path):
        raise DamagedFile(f"{file_path} is missing: {RESTORE}")
    try:
        network.load_weights(file_path)
    except Exception as e:  # noqa: BLE001 - h5py and Keras raise many kinds for a bad file
        raise DamagedFile(f"{file_path} cannot be read as the network's weights "
                          f"({files.reason(e)}): {RESTORE}") from None
    return network


def verify_checkpoint(checkpoint_path):
    """Raises DamagedFile if the files of checkpoint `checkpoint_path` (RUN/checkpoints/NAME/
    ckpt-N) differ from what the run's marker recorded when it saved them."""
    model_dir, files = marker.checkpoint_files(checkpoint_path)
    if model_dir is None:
        return
    if not files:
        verify(checkpoint_path + ".index", model_dir)
    for file_path in files:
        verify(file_path, model_dir)


def verify_checkpoint_file(file_path):
    """`verify` for a file beside a run's checkpoints (RUN/checkpoints/NAME/FILE)."""
    model_dir, _ = marker.checkpoint_files(file_path)
    verify(file_path, model_dir)


def damaged(file_path, error, what=RESTORE):
    """The DamagedFile for `file_path`, which could not be read (`error`)."""
    return DamagedFile(f"{file_path} is damaged ({files.reason(error)}): {what}")


def run_of_export(saved_model):
    """The run directory an export sits in (RUN/export/NAME/...) if it has a marker, else None."""
    path = os.path.abspath(saved_model)
    while os.path.dirname(path) != path:
        parent = os.path.dirname(path)
        if os.path.basename(path) == "export" and marker.exists(parent):
            return parent
        path = parent
    return None


def verify_export(directory):
    """`verify` for every file the marker of the run that `directory` (a directory below its
    export/) sits in records below it; nothing to do outside a marked run."""
    run = run_of_export(directory)
    if run is None:
        return
    prefix = os.path.relpath(os.path.abspath(directory), run).replace(os.sep, "/") + "/"
    for name in sorted(marker.read(run)["files"]):
        if name.startswith(prefix):
            verify(os.path.join(run, name), run)


def load_saved_model(saved_model, flag="--saved_model"):
    """tf.saved_model.load of `saved_model`, its files verified against its run's marker (when
    it sits in a run directory that records them); one that cannot be loaded is a DamagedFile,
    a directory that is no SavedModel a ConfigError."""
    import tensorflow as tf

    from mpl_tf.durable import quiet
    from mpl_tf.errors import ConfigError

    verify_export(saved_model)
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise ConfigError(f"{flag}={saved_model} is not a SavedModel directory (no "
                          "saved_model.pb); pass DIR/export/saved_model of an exported run")
    try:
        with quiet.stderr_silenced():  # TensorFlow's runtime logs the failure there too
            return tf.saved_model.load(saved_model)
    except Exception as e:  # noqa: BLE001 - a damaged SavedModel fails in many ways
        raise DamagedFile(f"{flag}={saved_model} cannot be loaded ({files.reason(e)}): "
                          f"{EXPORT_TODO}") from None
