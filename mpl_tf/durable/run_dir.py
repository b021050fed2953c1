"""The run directory, a contract users' scripts rely on: config.json, versions.json (Python and
package versions), labeled_indices.json, dataset_info.json (classes, input shape, pixel
statistics), logs/{train,finetune} (TensorBoard), {train,finetune}_log.csv,
checkpoints/{train,finetune} (finetune/settings.json: the finetuning flags its checkpoints are
of), model/serving.weights.h5 (the network that is evaluated and
served), results.json (written last, atomically, only when the run completes), export/
(SavedModel and TF Hub modules, see serving/export.py), figures, attempts.json (wall time per
process, see attempts.py), mpl_tf_run.json (the mark of a run directory: its identity and the
sha256 of what it wrote, see marker.py; written first) and, while a process writes it, .lock
(see lock.py). `ENTRIES` lists them: --overwrite deletes those and nothing else. Nothing in it
holds a path that is followed, so it can be copied or moved."""

import json
import os
import platform
import shutil
import tempfile

from mpl_tf import __version__
from mpl_tf.durable import files
from mpl_tf.durable import lock
from mpl_tf.durable import marker
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError

# The entries a run writes in its directory: the only ones --overwrite deletes, and the names
# every writer takes from here.
MARKER = marker.NAME
CONFIG = "config.json"
VERSIONS = "versions.json"
LABELED_INDICES = "labeled_indices.json"
DATASET_INFO = "dataset_info.json"
RESULTS = "results.json"
ATTEMPTS = "attempts.json"
LOGS = "logs"  # TensorBoard: logs/train, logs/finetune
CHECKPOINTS = "checkpoints"
MODEL = "model"
EXPORT = "export"
FIGURE = "decision_boundary.png"
LOG_NAMES = ("train", "finetune")


def csv_log(log_name):
    """The CSV log of a training (`LOG_NAMES`): train_log.csv, finetune_log.csv."""
    return f"{log_name}_log.csv"


ENTRIES = (MARKER, CONFIG, VERSIONS, LABELED_INDICES, DATASET_INFO, RESULTS, ATTEMPTS, LOGS,
           CHECKPOINTS, MODEL, EXPORT, FIGURE, *(csv_log(name) for name in LOG_NAMES))
SERVING_WEIGHTS = os.path.join(MODEL, "serving.weights.h5")
TRAINED_WEIGHTS = os.path.join(MODEL, "trained.weights.h5")  # the served network before finetuning
# Hidden names a run leaves while it writes (temporary files and directories, the lock).
_TEMPORARY_PREFIXES = (".tmp-", ".export-", ".overwritten-")
_TRASH_PREFIX = ".overwritten-"


def prepare(config, overwrite=False, adopt=False, command=None):
    """Creates model_dir, takes its lock (`lock`), marks it as a run directory (`marker`) and
    writes config.json; refuses a directory holding a finished run, one another live process
    holds, and one that is not empty and not marked as a run's.

    A directory holding a run made without a marker (before mpl_tf wrote one, or whose marker
    was lost) is refused unless `adopt`: then it is marked, if every entry in it is one a run
    writes and its config.json is readable (and, to resume, the flags' config).

    For --mode=finetune it is the other way round: the directory must hold a finished run, and
    one already finetuned is refused unless `overwrite` (its finetuned result would be lost).
    `overwrite` in training mode deletes what the run wrote there first (see `_clear`), and
    nothing else. A refusal leaves the directory as it was. `command`: the command line, for
    the marker.
    """
    path = config.model_dir
    if not path:
        raise ConfigError("--model_dir is required: where to write the run's results")
    _check_outside_runs(path)
    existed = os.path.isdir(path)
    if existed:  # first without the lock, so a refused directory's own .lock is not touched
        _check_marked(config, path, overwrite, adopt)
    try:
        os.makedirs(path, exist_ok=True)
        lock.acquire(path)
    except OSError as e:
        raise ConfigError(f"--model_dir={path} is not writable: {e.strerror}") from None
    try:
        adopting = _check_marked(config, path, overwrite, adopt)
        if not overwrite:
            _check_no_links(path)
        _check(config, path, overwrite)
    except Exception:
        lock.release(path)
        if not existed:
            os.rmdir(path)
        raise
    saved = json.loads(config.to_json())
    try:
        if config.mode == "finetune":
            if adopting:
                marker.write(path, marker.new(read_config_dict(path), command))
            return
        if overwrite:
            _clear(path)
        contents = marker.read(path)
        if contents is None or overwrite:
            contents = marker.new(saved, command)
        contents["config_sha256"] = marker.config_hash(saved)
        marker.write(path, contents)  # first: what follows is a run's
        files.write_json(os.path.join(path, CONFIG), saved)
        files.write_json(os.path.join(path, VERSIONS), versions())
    except OSError as e:
        raise ConfigError(f"--model_dir={path} is not writable: {e.strerror}") from None


def _entries(path, leftovers_too=False):
    """What `path` holds besides its lock and (unless `leftovers_too`) the leftovers of
    interrupted writes."""
    return sorted(name for name in os.listdir(path) if name != lock.LOCK_NAME and (
        leftovers_too or not name.startswith(_TEMPORARY_PREFIXES)))


def _check_outside_runs(path):
    """Raises ConfigError if `path` is inside another run's directory (a parent holds a
    marker): that run's --overwrite, finetuning or export would delete it with its entry."""
    parent = os.path.dirname(os.path.realpath(path))
    while True:
        if marker.exists(parent):
            raise ConfigError(f"--model_dir={path} is inside the run directory {parent} (it "
                              f"holds {MARKER}), whose --overwrite, finetuning or export would "
                              "delete it; choose a directory outside that run")
        above = os.path.dirname(parent)
        if above == parent:
            return
        parent = above


def _check_no_links(path):
    """Raises ConfigError if an entry a run writes in `path` is a symbolic link: resuming,
    finetuning and exporting write and delete inside them, which would reach where it points."""
    linked = [name for name in ENTRIES if os.path.islink(os.path.join(path, name))]
    if linked:
        raise ConfigError(f"--model_dir={path}: {_listed(linked)} "
                          f"{'is a symbolic link' if len(linked) == 1 else 'are symbolic links'}"
                          "; a run writes and deletes inside its own entries only: replace "
                          "the link with a copy, or pass --overwrite to start over")


def read_config_dict(path):
    """The checked contents of the run's config.json (see `readback`)."""
    from mpl_tf.durable import readback

    return readback.read_run_json(path, CONFIG)


def _check_marked(config, path, overwrite, adopt):
    """Raises ConfigError unless `path` (locked) is empty, or marked as a run's directory with
    a readable marker, or (with `adopt`) an unmarked run directory that may be adopted;
    returns whether it is adopted."""
    if marker.exists(path):
        marker.read(path)  # a damaged marker: DamagedFile, one line
        return False
    entries = _entries(path, leftovers_too=True)  # unmarked: no hidden name is a run's
    if not entries and config.mode != "finetune":
        return False
    foreign = [name for name in entries if name not in ENTRIES]
    looks_like_a_run = CONFIG in entries and (RESULTS in entries or CHECKPOINTS in entries)
    if not looks_like_a_run or foreign:
        if config.mode == "finetune":
            raise ConfigError(f"--mode=finetune needs a finished training run in --model_dir="
                              f"{path} (it holds no {MARKER})")
        raise ConfigError(f"--model_dir={path} is not empty and is not an mpl_tf run directory "
                          f"(no {MARKER}; it holds {_listed(foreign or entries)}); choose an "
                          "empty or new directory")
    if not adopt:
        raise ConfigError(f"--model_dir={path} holds a run without its {MARKER} (one made "
                          "before mpl_tf wrote it, or whose marker was lost): nothing there "
                          "is touched unless you pass --adopt to mark it as a run directory "
                          "(then it resumes, or is replaced with --overwrite)")
    read_config_dict(path)  # --adopt: config.json must be readable as a run's config
    return True


def _listed(names, at_most=3):
    shown = ", ".join(names[:at_most])
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def _check(config, path, overwrite):
    """Raises ConfigError if `config` may not run in the (locked, marked or empty) directory
    `path`."""
    from mpl_tf.durable import readback

    results = os.path.join(path, RESULTS)
    if config.mode == "finetune":
        readback.verify(results, path)  # a finished run's results.json, recorded: not lost
        if not os.path.exists(results) or not os.path.exists(os.path.join(path, SERVING_WEIGHTS)):
            raise ConfigError(f"--mode=finetune needs a finished training run in "
                              f"--model_dir={path} ({RESULTS} and {SERVING_WEIGHTS})")
        if "finetune_steps" in readback.read_run_json(path, RESULTS) and not overwrite:
            raise ConfigError(f"--model_dir={path} already holds a finetuned result "
                              f"({results}); pass --overwrite to replace it (the trained "
                              "network is finetuned again)")
        return
    if overwrite:
        return
    if os.path.exists(results):
        raise ConfigError(f"--model_dir={path} already holds a finished run ({results}); "
                          "choose another directory or pass --overwrite")
    readback.verify(results, path)  # recorded when the run finished, and lost since
    if not os.path.isdir(os.path.join(path, CHECKPOINTS)):
        return
    # Progress to resume: it must be of this config, which config.json and the marker say.
    saved_path = os.path.join(path, CONFIG)
    if not os.path.exists(saved_path):
        raise ConfigError(f"--model_dir={path} holds checkpoints but its {CONFIG} is missing, "
                          "so it cannot tell which settings they are of: restore it from a copy "
                          "of the run, or pass --overwrite to start over")
    saved = read_config_dict(path)
    readback.check_config_identity(path, saved)
    differs = _changed_fields(saved, config)
    if differs:
        raise ConfigError(f"--model_dir={path} holds checkpoints of a run with a different "
                          f"config ({', '.join(differs)}); pass --overwrite to start over")


def _clear(path):
    """Deletes what a run wrote in `path` (its `ENTRIES` and leftovers of interrupted writes)
    for --overwrite, and nothing else: those are renamed into one hidden directory (each
    rename is atomic, so nothing is half deleted while the old run's files are still in their
    places), which is then deleted. Anything else there is left, and said so on stdout."""
    names = os.listdir(path)
    trash = tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=path)
    for name in names:
        if name in ENTRIES or name.startswith(_TEMPORARY_PREFIXES):
            os.rename(os.path.join(path, name), os.path.join(trash, name))
    shutil.rmtree(trash)
    kept = [name for name in _entries(path) if name not in ENTRIES]
    if kept:
        print(f"--overwrite: left {_listed(kept)} in {path} untouched (not written by a run)")


def _changed_fields(saved, config):
    """Names of the fields where `config` differs from the saved config.json's contents, if
    any. A field the saved config lacks (written before the field existed) counts as its
    default."""
    saved = {**json.loads(Config().to_json()), **saved}
    current = json.loads(config.to_json())
    return sorted(k for k in current if k not in marker.RESUMABLE and saved.get(k) != current[k])


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


def read_json(path, check=None):
    """The JSON in `path`; missing or damaged is a one-line `errors.DamagedFile`
    (`readback.read_json`)."""
    from mpl_tf.durable import readback

    return readback.read_json(path, check)


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


def open_directory_mode(path):
    """Gives a directory made by tempfile.mkdtemp (0700) the mode os.makedirs would (0777 less
    the umask), for one renamed into place."""
    os.chmod(path, 0o777 & ~files.umask())
