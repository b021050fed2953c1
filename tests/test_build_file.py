"""BUILD must name every module of the package and every test module, and nothing that is gone:
a module missing from the py_library's srcs is absent from Bazel's runfiles (its import fails
only under Bazel), and a test module without its py_test is silently not run by `bazel test`."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Not a key of BUILD's TEST_DATA (`"tests/x.py": [...]`), which gives a listed test its files.
NAMED = re.compile(r'"((?:mpl_tf|tests|benchmarks)/[\w/]*\.py)"(?!\s*:)')


def named_in_build(build_text):
    """The .py paths BUILD spells out as string literals (not as TEST_DATA keys)."""
    return set(NAMED.findall(build_text))


def unnamed(build_text, root=ROOT):
    """Package modules and test files (tests/*.py) under `root` that BUILD does not name."""
    files = [*root.glob("mpl_tf/**/*.py"), *root.glob("tests/*.py")]
    return sorted(str(f.relative_to(root)) for f in files
                  if str(f.relative_to(root)) not in named_in_build(build_text))


def test_every_module_and_test_is_named_in_build():
    assert unnamed((ROOT / "BUILD").read_text()) == []


def test_every_file_build_names_exists():
    missing = sorted(p for p in named_in_build((ROOT / "BUILD").read_text())
                     if not (ROOT / p).exists())
    assert missing == []


@pytest.mark.parametrize("dropped", ["mpl_tf/recipes.py", "tests/test_build_file.py"])
def test_a_module_or_test_left_out_is_caught(dropped):
    """The check itself: BUILD without one of its lines fails it."""
    build = (ROOT / "BUILD").read_text()
    assert f'"{dropped}"' in build
    assert unnamed(build.replace(f'"{dropped}",', "")) == [dropped]
