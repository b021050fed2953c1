"""One writer per run directory: MODEL_DIR/.lock names the process (pid, host) that holds it.

Two runs writing one directory would mix their TensorBoard events and lose one's results, so the
second is refused, naming the holder. The lock is a file created exclusively (O_EXCL, which also
holds on most shared file systems), removed when the holder exits normally, by an exception or
by SIGTERM/Ctrl-C (both end in an exception here, see `preemption.py`). A holder killed without
warning (kill -9, a machine that died) leaves it behind: a lock whose pid is not alive on this
host is stale and taken over; one from another host cannot be checked from here, so the message
says which file to delete once that process is known to be gone. Taking over is serialised by
flock on the directory, so two reruns racing for a stale lock cannot both win.
"""

import atexit
import contextlib
import fcntl
import json
import os
import socket

from mpl_tf.errors import ConfigError

LOCK_NAME = ".lock"
_held = {}  # lock path -> the contents this process wrote


def acquire(model_dir):
    """Takes the lock of the existing directory `model_dir` (again: a no-op); ConfigError if a
    live process holds it."""
    path = os.path.join(model_dir, LOCK_NAME)
    if path in _held:
        return
    mine = {"pid": os.getpid(), "host": socket.gethostname()}
    with _directory_flock(model_dir):
        holder = _read(path)
        if holder is not None:
            if holder != mine and _alive(holder):
                raise ConfigError(
                    f"--model_dir={model_dir} is in use by process {holder.get('pid')} on host "
                    f"{holder.get('host')} (its lock {path}); wait for it, or choose another "
                    "directory (delete the lock only if that process is gone)")
            os.remove(path)  # stale (its process is dead), or this process's own
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
    _held[path] = mine


def release(model_dir):
    """Removes this process's lock of `model_dir`, if it holds one."""
    path = os.path.join(model_dir, LOCK_NAME)
    if _held.pop(path, None) is not None and os.path.exists(path):
        os.remove(path)


@atexit.register
def release_all():
    """Removes every lock this process holds (also at exit)."""
    for path in list(_held):
        release(os.path.dirname(path))


def _read(path):
    """The holder recorded in a lock file; an empty one (a holder killed between creating and
    writing it) counts as a dead holder on this host; anything else that is not a lock this
    module writes is somebody else's file, refused in one line, never deleted."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read ({e.strerror}); delete it if no mpl_tf "
                          "process uses this directory") from None
    if not text:
        return {"pid": None, "host": socket.gethostname()}
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not (isinstance(holder, dict) and isinstance(holder.get("host"), str)
            and isinstance(holder.get("pid"), int) and not isinstance(holder["pid"], bool)):
        raise ConfigError(f"{path} is not a lock mpl_tf wrote (a JSON object with pid and host); "
                          "it is left alone: delete it yourself if no mpl_tf process uses this "
                          "directory")
    return holder


def _alive(holder):
    """False only when the holder is known dead: on this host, with no such pid."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@contextlib.contextmanager
def _directory_flock(model_dir):
    fd = os.open(model_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
