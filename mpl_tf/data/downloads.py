"""A TFDS download that cannot happen fails at once, in one line, and leaves nothing half-done.

TFDS retries a refused or unresolved download ten times with growing pauses: offline,
`--dataset=cifar10` took 3.5 minutes to fail, printed a dozen retry warnings and left partial
files in --data_dir. So inside `probing_downloads`, before TFDS downloads from a host (a file
neither in --manual_dir nor downloaded already), `check_reachable` asks it for one HEAD
response, with a short timeout and no retries, through the proxies the environment names (as
TFDS's own requests do), and raises `Unreachable` naming the host. A network that fails later,
part way through a download, is TFDS's to retry as before.

`partial_files_removed` cleans up after a preparation that fails anyway (or is interrupted): it
removes what it created in --data_dir that TFDS marks as partial (`*.tmp.*` downloads,
`incomplete.*` builds) and the directories it created that are left empty; finished downloads
stay, so a rerun does not fetch them again, and nothing that was there before is touched.
"""

import contextlib
import logging
import os
import re
import shutil
import urllib.parse

PROBE_TIMEOUT_SECONDS = 10
# TFDS's names for what it has not finished: a download being written, a dataset being built.
PARTIAL = re.compile(r"\.tmp\.|^incomplete\.|\.incomplete")
# How deep below --data_dir TFDS puts them (downloads/NAME/FILE.tmp.ID, NAME/incomplete.ID).
_DEPTH = 3
_ERRNO = re.compile(r"\[Errno -?\d+\] [^)'\"]*")


class Unreachable(Exception):
    """A download host that did not answer: `host`, and `reason` in a few words."""

    def __init__(self, host, reason):
        super().__init__(f"cannot reach {host}: {reason}")
        self.host, self.reason = host, reason


def check_reachable(url, timeout=PROBE_TIMEOUT_SECONDS):
    """Raises `Unreachable` unless the host of `url` answers a HEAD request within `timeout`
    seconds (any HTTP status counts: the host is there)."""
    import requests

    try:
        requests.head(url, timeout=timeout, allow_redirects=False).close()
    except requests.RequestException as e:
        raise Unreachable(urllib.parse.urlsplit(url).netloc, _short(e, timeout)) from e


@contextlib.contextmanager
def probing_downloads(timeout=PROBE_TIMEOUT_SECONDS):
    """Inside, every download TFDS starts first checks its host (once per host) with
    `check_reachable`. TFDS decides what it must download (not a manually downloaded or
    cached file), and calls its download manager's `_download` for each, before any retry:
    that call is wrapped. A TFDS without it is left alone (it then fails as slowly as before)."""
    from tensorflow_datasets.core.download import download_manager

    manager = download_manager.DownloadManager
    original = getattr(manager, "_download", None)
    if original is None:
        yield
        return
    reachable = set()

    def probed(self, resource):
        url = getattr(resource, "url", resource)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc not in reachable:
            check_reachable(url, timeout)
            reachable.add(parts.netloc)
        return original(self, resource)

    manager._download = probed
    try:
        yield
    finally:
        manager._download = original


def _short(error, timeout):
    """A network error in a few words: its errno line ("[Errno 111] Connection refused"), or
    its type (a timeout)."""
    found = _ERRNO.search(str(error))
    if found:
        return f"{type(error).__name__}: {found.group(0).strip()}"
    import requests

    if isinstance(error, requests.Timeout):
        return f"{type(error).__name__}: no answer within {timeout} s"
    return type(error).__name__


@contextlib.contextmanager
def partial_files_removed(root):
    """On an exception (or Ctrl-C) inside, removes the partial files and emptied directories
    created in `root` meanwhile (see the module docstring), then re-raises."""
    root = os.path.abspath(root)
    existed = os.path.isdir(root)
    before = _entries(root)
    try:
        yield
    except BaseException:
        _remove_partial(root, before, existed)
        raise


def _entries(root):
    """Paths (relative to `root`) of everything down to _DEPTH levels below it."""
    found = set()
    for parent, directories, files in os.walk(root):
        relative = os.path.relpath(parent, root)
        depth = 0 if relative == "." else relative.count(os.sep) + 1
        for name in directories + files:
            found.add(os.path.normpath(os.path.join(relative, name)))
        if depth + 1 >= _DEPTH:
            directories[:] = []
    return found


def _remove_partial(root, before, existed):
    created = sorted(_entries(root) - before, key=lambda p: (p.count(os.sep), p))
    removed = []
    for relative in created:
        if any(relative.startswith(r + os.sep) for r in removed):
            continue
        if PARTIAL.search(os.path.basename(relative)):
            path = os.path.join(root, relative)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.remove(path)
            removed.append(relative)
    for relative in reversed(created):  # deepest first, so parents empty in turn
        path = os.path.join(root, relative)
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            os.rmdir(path)
    if not existed and os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)


@contextlib.contextmanager
def quiet_logging():
    """TFDS's and urllib3's warnings (retries, a build folder without its info file) off
    stderr for the duration: what fails is said in the one line of the error."""
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    loggers = [logging.getLogger(name) for name in ("urllib3", "absl", "tensorflow_datasets")]
    levels = [logger.level for logger in loggers]
    absl_logging.set_verbosity(absl_logging.ERROR)
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
