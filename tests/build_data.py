"""Every repository file a test module reads must be in its Bazel target's `data`, or `bazel
test //...` fails on a fresh clone while `make test` (pytest, what CI runs) passes: the file is
in the checkout but not in the test's runfiles (tests/test_data_sources.py read
requirements.txt that way, issue 21).

So under pytest an audit hook records the repository files each test module opens, while it is
collected and while its tests run, and the files its subprocesses are given as arguments
(`--flagfile=flags/x.cfg`, `cp -r ROOT/README.md ...`: what a child will read, as far as its
command line tells), and when the module's last test is done (`build_data_check`, a
module-scoped autouse fixture that conftest.py imports) each must match its py_test's `data`
in BUILD: the globs every test target carries, plus TEST_DATA's files for that test. A file
that does not is an error at that module's teardown, naming the file and where to add it.

Not checked: Python sources of mpl_tf/ and tests/ (the targets' srcs and deps carry them),
anything outside the repository (temporary directories, the venv outside it) or in .venv, .git
and caches inside it, files a child process opens without naming them in its arguments, and
anything at all under Bazel itself (which enforces runfiles on its own).
"""

import ast
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "BUILD")
_SKIPPED_DIRS = {".git", ".venv", ".pytest_cache", "__pycache__", ".mypy_cache"}
_SOURCE_DIRS = ("mpl_tf", "tests")
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


# --- what BUILD gives a test -------------------------------------------------------------------

def carried(build_text, test_file):
    """The `data` of `test_file`'s py_test (e.g. "tests/test_main.py") in `build_text`: glob
    patterns and file names, as BUILD's py_test comprehension spells them."""
    block = re.search(r"\[py_test\((.*?)\)\s+for test_file in \[", build_text, re.S)
    if block is None:
        raise ValueError("BUILD has no [py_test(...) for test_file in [...]] comprehension")
    data = re.search(r"\bdata\s*=\s*(.*?),\n", block.group(1), re.S)
    if data is None:
        return []
    expression = data.group(1)
    patterns = []
    for globbed in re.findall(r"glob\(\[(.*?)\]\)", expression, re.S):
        patterns += ast.literal_eval(f"[{globbed}]")
    listed = re.sub(r"glob\(\[.*?\]\)", "", expression, flags=re.S)
    for literal in re.findall(r"\[([^\[\]]*)\]", listed):
        patterns += ast.literal_eval(f"[{literal}]")
    if "TEST_DATA" in expression:
        patterns += test_data(build_text).get(test_file, [])
    return patterns


def test_data(build_text):
    """BUILD's TEST_DATA dict (test file -> files beyond the common globs)."""
    found = re.search(r"^TEST_DATA\s*=\s*(\{.*?^\})", build_text, re.S | re.M)
    return ast.literal_eval(found.group(1)) if found else {}


def _pattern_regex(pattern):
    """A Bazel glob pattern as a regex: * and ? stay within a path segment, ** spans them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def missing(build_text, test_file, read):
    """The repository-relative paths in `read` that `test_file`'s target does not carry."""
    patterns = [_pattern_regex(p) for p in carried(build_text, test_file)]
    return sorted(path for path in set(read)
                  if not any(p.match(path.replace(os.sep, "/")) for p in patterns))


# --- what a test module reads --------------------------------------------------------------------

def repository_file(path, cwd=None):
    """`path` relative to the repository if a test reading it needs it in its runfiles, else
    None (see the module docstring for what is left out)."""
    try:
        path = os.fsdecode(path)
    except TypeError:
        return None
    full = os.path.normpath(os.path.join(cwd or os.getcwd(), path))
    if not full.startswith(ROOT + os.sep):
        return None
    relative = os.path.relpath(full, ROOT)
    parts = relative.split(os.sep)
    if _SKIPPED_DIRS & set(parts) or parts[0].startswith("bazel-"):
        return None
    if parts[0] in _SOURCE_DIRS and relative.endswith((".py", ".pyc")):
        return None
    return relative


class Recorder:
    """The audit hook: repository files opened for reading, and paths named in subprocess
    arguments, by the test module being collected or run (`module`; None: not recording)."""

    def __init__(self):
        self.module = None
        self.read = {}

    def hook(self, event, args):
        if self.module is None or event not in ("open", "subprocess.Popen"):
            return
        if event == "open":
            self._open(*args[:3])
        else:
            self._command(args[1], args[2])

    def _open(self, path, mode, flags):
        if isinstance(path, int):
            return
        if mode is not None:
            if any(c in mode for c in "wax+"):
                return
        elif flags is not None and flags & (_WRITING | getattr(os, "O_DIRECTORY", 0)):
            return
        relative = repository_file(path)
        # A name os.open resolves against a directory descriptor (os.fwalk, shutil.rmtree)
        # reaches the hook without it: if it is no file of the repository, it was not one.
        if relative is not None and os.path.isfile(os.path.join(ROOT, relative)):
            self._add(relative)

    def _command(self, arguments, cwd):
        if isinstance(arguments, (str, bytes, os.PathLike)):
            arguments = [arguments]
        for argument in arguments or ():
            try:
                argument = os.fsdecode(argument)
            except TypeError:
                continue
            for candidate in {argument, argument.split("=", 1)[-1]}:
                relative = repository_file(candidate, cwd=os.fsdecode(cwd) if cwd else None)
                if relative is None:
                    continue
                full = os.path.join(ROOT, relative)
                if os.path.isfile(full):
                    self._add(relative)
                elif os.path.isdir(full):
                    for parent, directories, files in os.walk(full):
                        directories[:] = [d for d in directories if d not in _SKIPPED_DIRS]
                        for name in files:
                            self._add(repository_file(os.path.join(parent, name)))

    def _add(self, relative):
        if relative is not None:
            self.read.setdefault(self.module, set()).add(relative)


# Set by `bazel test` for a test and inherited by its children.
BAZEL_VARIABLES = ("TEST_SRCDIR", "RUNFILES_DIR", "RUNFILES_MANIFEST_FILE")


def _under_bazel():
    return any(name in os.environ for name in BAZEL_VARIABLES)


RECORDER = Recorder()
_BUILD_TEXT = None
if not _under_bazel() and os.path.exists(BUILD):
    with open(BUILD) as _f:
        _BUILD_TEXT = _f.read()
    sys.addaudithook(RECORDER.hook)


def _module_name(path):
    return os.path.relpath(os.path.abspath(os.fsdecode(path)), ROOT)


# --- pytest: hooks and the fixture conftest.py imports ---------------------------------------

def pytest_collectstart(collector):
    if _BUILD_TEXT is not None and isinstance(collector, pytest.Module):
        RECORDER.module = _module_name(collector.path)


def pytest_collectreport(report):
    if isinstance(report, pytest.CollectReport) and RECORDER.module is not None:
        RECORDER.module = None


@pytest.fixture(scope="module", autouse=True)
def build_data_check(request):
    """Records what the module's tests read; after its last test, fails unless BUILD's target
    of the module carries every repository file among it."""
    if _BUILD_TEXT is None:
        yield
        return
    module = _module_name(request.module.__file__)
    RECORDER.module = module
    try:
        yield
    finally:
        RECORDER.module = None
    if f'"{module}"' not in _BUILD_TEXT:
        return  # a module BUILD does not list at all: tests/test_build_file.py says so
    lacking = missing(_BUILD_TEXT, module, RECORDER.read.get(module, ()))
    if lacking:
        pytest.fail(f"{module} reads {', '.join(lacking)}, which its Bazel target's data does "
                    f"not carry (`bazel test` fails on a fresh clone): add "
                    f"TEST_DATA[\"{module}\"] = [...] in BUILD", pytrace=False)
