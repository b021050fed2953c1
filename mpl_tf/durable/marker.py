"""What makes a directory a run directory: MODEL_DIR/mpl_tf_run.json, a file only mpl_tf writes.

`run_dir.prepare` writes it first, into a new or empty directory, and from then on it is the
run's identity and its record of what it wrote:

    format          1
    run_id          a random hex uuid, new for every run (--overwrite starts a new one)
    command         the command line that created the run
    config_sha256   the sha256 of config.json's settings, less those a resumed run may change
                    (`RESUMABLE`; see `config_hash`): config.json must match it
    created         when the run was created (UTC, ISO 8601)
    mpl_tf          the mpl_tf version that created it
    files           {path relative to the run: sha256} of the files the run recorded: each
                    checkpoint as it is saved, and every file (TensorBoard logs aside) when the
                    run finishes; a file read back is checked against it (`readback.py`)

--overwrite deletes only the entries a run writes (`run_dir.ENTRIES`) and only in a directory
holding this file; a non-empty directory without it is refused, so nothing a user put there is
ever deleted or overwritten.
"""

import datetime
import hashlib
import json
import os
import re
import uuid

from mpl_tf import __version__
from mpl_tf.durable import files

# What to do about a damaged marker.
TODO = ("restore it from a copy of the run (without it the run's files cannot be "
               "checked), or train again into a new directory")
NAME = "mpl_tf_run.json"
FORMAT = 1
# Settings a resumed run may change: they do not alter what is computed (nor the config hash).
RESUMABLE = frozenset({"model_dir", "strategy", "tpu", "eval_batch_size",
                       "steps_per_execution", "jit_compile", "max_nonfinite_steps", "mode",
                       "cache_dir",  # cached pixels are the decoded ones, bit for bit
                       "multi_worker_timeout"})
_HEX64 = re.compile(r"[0-9a-f]{64}$")
_RUN_ID = re.compile(r"[0-9a-f]{32}$")


def path(model_dir):
    return os.path.join(model_dir, NAME)


def exists(model_dir):
    return os.path.lexists(path(model_dir))


def config_hash(config_dict):
    """The sha256 of a config's settings (a config.json's dict) less the `RESUMABLE` ones."""
    kept = {name: value for name, value in config_dict.items() if name not in RESUMABLE}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_hash(file_path):
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(file_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new(config_dict, command):
    """A new run's marker contents."""
    return {"format": FORMAT, "run_id": uuid.uuid4().hex, "command": list(command or []),
            "config_sha256": config_hash(config_dict),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mpl_tf": __version__, "files": {}}


def problem(value):
    """Why `value` is not a marker's contents, or None."""
    if not isinstance(value, dict):
        return "not a JSON object"
    if value.get("format") != FORMAT:
        return f"format {value.get('format')!r}, not {FORMAT}"
    if not isinstance(value.get("run_id"), str) or not _RUN_ID.match(value["run_id"]):
        return "no run_id"
    if not isinstance(value.get("config_sha256"), str) or not _HEX64.match(
            value["config_sha256"]):
        return "no config_sha256"
    files = value.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(name, str) and isinstance(digest, str) and _HEX64.match(digest)
            for name, digest in files.items()):
        return "its files record is not {path: sha256}"
    outside = next((name for name in files if not _inside_the_run(name)), None)
    if outside is not None:
        return f"its files record names {outside!r}, which is not a path inside the run"
    return None


def _inside_the_run(name):
    """Whether a files record's key is a relative path below the run directory, as `_key`
    writes them (no '..', '.', empty or absolute parts)."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(
        part not in ("", ".", "..") for part in parts)


def read(model_dir):
    """The marker of `model_dir`, checked (`readback.read_json`); None when there is none."""
    if not exists(model_dir):
        return None
    return files.read_json(path(model_dir), check=problem, what_to_do=TODO)


def write(model_dir, contents):
    files.write_json(path(model_dir), contents)


def recorded(model_dir, relative):
    """The sha256 the marker of `model_dir` records for `relative` (None: not recorded, or no
    marker)."""
    contents = read(model_dir)
    return None if contents is None else contents["files"].get(_key(relative))


def record(model_dir, relatives=(), forget=()):
    """Records the sha256 of each file of `relatives` (a directory: every file below it) in the
    marker of `model_dir`, first dropping the records of `forget` (files, or directories: every
    record below them); a missing file's record is dropped. No marker: nothing to do."""
    contents = read(model_dir)
    if contents is None:
        return
    files = contents["files"]
    for gone in forget:
        prefix = _key(gone)
        for name in [n for n in files if n == prefix or n.startswith(prefix + "/")]:
            del files[name]
    for relative in relatives:
        for name in _files_below(model_dir, relative):
            files[name] = file_hash(os.path.join(model_dir, name))
        if not os.path.exists(os.path.join(model_dir, relative)):
            files.pop(_key(relative), None)
    write(model_dir, contents)


def seal(model_dir, entries):
    """Records every file below `entries` (the run's own names, less what nothing reads back),
    forgetting records of files no longer there: the finished run, as its files are checked
    against from now on. A file the user put beside them is not the run's, so never recorded."""
    contents = read(model_dir)
    if contents is None:
        return
    names = [name for entry in sorted(entries) if entry != NAME
             and os.path.lexists(os.path.join(model_dir, entry))
             for name in _files_below(model_dir, entry)]
    contents["files"] = {name: file_hash(os.path.join(model_dir, name)) for name in names}
    write(model_dir, contents)


def _key(relative):
    return os.path.normpath(relative).replace(os.sep, "/")


def _files_below(model_dir, relative):
    """Paths (relative, "/"-separated) of the file `relative` or the files below it."""
    top = os.path.join(model_dir, relative)
    if os.path.isfile(top):
        return [_key(relative)]
    found = []
    for root, dirs, names in os.walk(top):
        dirs.sort()
        found += [_key(os.path.relpath(os.path.join(root, name), model_dir))
                  for name in sorted(names)]
    return found


def record_checkpoints(directory, step):
    """After checkpoint `step` is saved in `directory` (RUN/checkpoints/NAME): records its files
    and its companions' (`*-STEP.*`: written anew if that step was saved before, as a preemption
    right after a periodic save does) and the state file `checkpoint`, keeps the records of the
    other checkpoints, and forgets those of checkpoints no longer kept."""
    model_dir, relative = _run_of_checkpoints(directory)
    if model_dir is None:
        return
    contents = read(model_dir)
    files = contents["files"]
    prefix = _key(relative) + "/"
    present = set(_files_below(model_dir, relative))
    for name in [n for n in files if n.startswith(prefix) and n not in present]:
        del files[name]
    for name in sorted(present):
        if (name not in files or name.endswith("/checkpoint")
                or f"-{step}." in os.path.basename(name)):
            files[name] = file_hash(os.path.join(model_dir, name))
    write(model_dir, contents)


def _run_of_checkpoints(directory):
    """(run directory, directory relative to it) for RUN/checkpoints/NAME of a marked run,
    else (None, None)."""
    parent = os.path.dirname(os.path.abspath(directory))
    model_dir = os.path.dirname(parent)
    if os.path.basename(parent) != "checkpoints" or not exists(model_dir):
        return None, None
    return model_dir, os.path.relpath(os.path.abspath(directory), model_dir)


def checkpoint_files(checkpoint_path):
    """(run directory, [its files]) of the checkpoint `checkpoint_path` (DIR/ckpt-N) of a marked
    run, else (None, [])."""
    directory = os.path.dirname(os.path.abspath(checkpoint_path))
    model_dir, _ = _run_of_checkpoints(directory)
    if model_dir is None:
        return None, []
    stem = os.path.basename(checkpoint_path)
    return model_dir, [os.path.join(directory, name) for name in sorted(os.listdir(directory))
                       if name.startswith(stem + ".")]
