"""A file written whole or not at all (through a temporary file and a rename, with the modes an
ordinary file gets), and a JSON file read back checked: what every writer and reader of a run
directory stands on."""

import json
import os
import tempfile

from mpl_tf.errors import DamagedFile


def write_json(path, obj):
    """Writes JSON through a temporary file and a rename, so readers never see half a file."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(path, text):
    """Writes text through a temporary file and a rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp's 0600 would hide the run from its readers
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def umask():
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_json(file_path, check=None, what_to_do=""):
    """The JSON in `file_path`, parsed and passed by `check(value)` (why it is not what the file
    must hold, or None); anything else is a DamagedFile naming the file and `what_to_do`."""
    try:
        with open(file_path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise DamagedFile(f"{file_path} is missing: {what_to_do}") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError included
        raise DamagedFile(f"{file_path} is damaged ({reason(e)}): {what_to_do}") from None
    problem = check(value) if check else None
    if problem:
        raise DamagedFile(f"{file_path} is damaged ({problem}): {what_to_do}")
    return value


def reason(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
