"""The run directory, a contract users' scripts rely on: config.json, versions.json (Python and
package versions), labeled_indices.json, dataset_info.json (classes, input shape, pixel
statistics), logs/{train,finetune} (TensorBoard), {train,finetune}_log.csv,
checkpoints/{train,finetune} (finetune/settings.json: the finetuning flags its checkpoints are
of), model/serving.weights.h5 (the network that is evaluated and
served), results.json (written last, atomically, only when the run completes), export/
(SavedModel and TF Hub modules, see serving/export.py), figures, attempts.json (wall time per process,
see attempts.py) and, while a process writes it, .lock (see lock.py). Nothing in it holds a
path that is followed, so it can be copied or moved."""

import json
import os
import platform
import shutil
import tempfile

from mpl_tf import __version__
from mpl_tf.durable import lock
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError

SERVING_WEIGHTS = os.path.join("model", "serving.weights.h5")
TRAINED_WEIGHTS = os.path.join("model", "trained.weights.h5")  # the served network before finetuning


def prepare(config, overwrite=False):
    """Creates model_dir, takes its lock (`lock.py`) and writes config.json; refuses a
    directory holding a finished run, or one another live process holds.

    For --mode=finetune it is the other way round: the directory must hold a finished run, and
    one already finetuned is refused unless `overwrite` (its finetuned result would be lost).
    `overwrite` in training mode empties the directory first (see `_clear`). A refusal leaves
    the directory as it was.
    """
    path = config.model_dir
    if not path:
        raise ConfigError("--model_dir is required: where to write the run's results")
    existed = os.path.isdir(path)
    try:
        os.makedirs(path, exist_ok=True)
        lock.acquire(path)
    except OSError as e:
        raise ConfigError(f"--model_dir={path} is not writable: {e.strerror}") from None
    try:
        _check(config, path, overwrite)
    except ConfigError:
        lock.release(path)
        if not existed:
            os.rmdir(path)
        raise
    if config.mode == "finetune":
        return
    try:
        if overwrite:
            _clear(path)
        write_json(os.path.join(path, "config.json"), json.loads(config.to_json()))
        write_json(os.path.join(path, "versions.json"), versions())
    except OSError as e:
        raise ConfigError(f"--model_dir={path} is not writable: {e.strerror}") from None


def _check(config, path, overwrite):
    """Raises ConfigError if `config` may not run in the (locked) directory `path`."""
    results = os.path.join(path, "results.json")
    if config.mode == "finetune":
        if not os.path.exists(results) or not os.path.exists(os.path.join(path, SERVING_WEIGHTS)):
            raise ConfigError(f"--mode=finetune needs a finished training run in "
                              f"--model_dir={path} (results.json and {SERVING_WEIGHTS})")
        if "finetune_steps" in read_json(results) and not overwrite:
            raise ConfigError(f"--model_dir={path} already holds a finetuned result "
                              f"({results}); pass --overwrite to replace it (the trained "
                              "network is finetuned again)")
        return
    if os.path.exists(results) and not overwrite:
        raise ConfigError(f"--model_dir={path} already holds a finished run ({results}); "
                          "choose another directory or pass --overwrite")
    differs = _changed_fields(os.path.join(path, "config.json"), config)
    if differs and os.path.isdir(os.path.join(path, "checkpoints")) and not overwrite:
        raise ConfigError(f"--model_dir={path} holds checkpoints of a run with a different "
                          f"config ({', '.join(differs)}); pass --overwrite to start over")
    if overwrite and _entries(path) and not os.path.exists(os.path.join(path, "config.json")):
        raise ConfigError(f"--model_dir={path} holds files but no config.json, so it is not a "
                          "run directory; --overwrite empties run directories only")


def _entries(path):
    """What `path` holds besides its lock and the leftovers of an interrupted `_clear`."""
    return [name for name in os.listdir(path)
            if name != lock.LOCK_NAME and not name.startswith(_TRASH_PREFIX)]


_TRASH_PREFIX = ".overwritten-"


def _clear(path):
    """Empties the run directory `path` for --overwrite, keeping only its lock: everything is
    renamed into one hidden directory (each rename is atomic, so nothing is half deleted while
    the old run's files are still in their places), which is then deleted. Leftovers of an
    interrupted clear go with it."""
    trash = tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=path)
    for name in os.listdir(path):
        if name not in (lock.LOCK_NAME, os.path.basename(trash)):
            os.rename(os.path.join(path, name), os.path.join(trash, name))
    shutil.rmtree(trash)


# Settings a resumed run may change: they do not alter what is computed.
_RESUMABLE_CHANGES = {"model_dir", "strategy", "tpu", "eval_batch_size",
                      "steps_per_execution", "jit_compile", "max_nonfinite_steps", "mode",
                      "cache_dir",  # cached pixels are the decoded ones, bit for bit
                      "multi_worker_timeout"}


def _changed_fields(saved_config_path, config):
    """Names of the fields where `config` differs from the saved config.json, if any. A field
    the saved config lacks (written before the field existed) counts as its default."""
    if not os.path.exists(saved_config_path):
        return []
    saved = {**json.loads(Config().to_json()), **read_json(saved_config_path)}
    current = json.loads(config.to_json())
    return sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])



def versions():
    """mpl_tf's, Python's, the platform's and the packages' versions: what a rerun needs to
    match (mpl_tf's from the package itself, so a checkout that was never installed has it)."""
    from importlib import metadata

    packages = ("tensorflow", "keras", "tensorflow-datasets", "numpy", "absl-py",
                "scikit-learn")
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return {"mpl_tf": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu": cpu_model(), "packages": found}


def cpu_model():
    """The CPU's model name (Linux), which speed and bfloat16 support depend on."""
    if not os.path.exists("/proc/cpuinfo"):
        return platform.processor() or "unknown"
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), "unknown")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_weights(model_dir, network, relative_path=SERVING_WEIGHTS):
    """Saves a network's weights under model_dir (written to a temporary name first)."""
    path = os.path.join(model_dir, relative_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path[:-len(".weights.h5")] + ".tmp.weights.h5"
    network.save_weights(tmp)
    os.replace(tmp, path)


def remove(path):
    """Removes a file or a directory tree, if there."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def write_json(path, obj):
    """Writes JSON through a temporary file and a rename, so readers never see half a file."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(path, text):
    """Writes text through a temporary file and a rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
