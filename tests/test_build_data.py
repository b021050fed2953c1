"""The check that each test's Bazel target carries the repository files the test reads
(build_data.py, run by conftest.py for every test module): BUILD parsed as Bazel reads it, a
file left out caught (end to end: a pytest run fails on it), reads and subprocess arguments
recorded, and what a target carries by its sources left alone (issue 21)."""

import os
import shutil
import subprocess
import sys
import textwrap

import build_data

ROOT = build_data.ROOT
with open(build_data.BUILD) as _f:
    BUILD_TEXT = _f.read()


def test_a_target_carries_the_recipes_the_json_files_and_its_own_files():
    common = ["flags/*.cfg", "tests/*.json"]
    assert build_data.carried(BUILD_TEXT, "tests/test_data_sources.py") == [
        *common, "requirements.txt"]
    assert build_data.carried(BUILD_TEXT, "tests/test_main.py") == common
    assert build_data.missing(BUILD_TEXT, "tests/test_data_sources.py",
                              ["requirements.txt", "flags/digits.cfg",
                               "tests/folder_splits_before.json"]) == []


def test_a_file_the_target_does_not_carry_is_caught():
    """The BUILD of the base commit, whose target did not carry requirements.txt."""
    without = BUILD_TEXT.replace('    "tests/test_data_sources.py": ["requirements.txt"],\n', "")
    assert without != BUILD_TEXT
    assert build_data.missing(without, "tests/test_data_sources.py",
                              ["requirements.txt", "flags/digits.cfg"]) == ["requirements.txt"]
    assert build_data.missing(BUILD_TEXT, "tests/test_main.py",
                              ["flags/sub/x.cfg", "README.md"]) == ["README.md",
                                                                   "flags/sub/x.cfg"]


def test_reads_and_subprocess_arguments_are_recorded_and_sources_are_not(tmp_path):
    recorder = build_data.Recorder()
    sys.addaudithook(recorder.hook)  # inert once `module` is None again
    recorder.module = "tests/test_x.py"
    try:
        with open(os.path.join(ROOT, "requirements.txt")) as f:
            f.read(1)
        with open(os.path.join(ROOT, "mpl_tf", "config.py")) as f:  # a source: deps carry it
            f.read(1)
        (tmp_path / "mine.txt").write_text("outside the repository")
        subprocess.run(["true", "--flagfile=flags/digits.cfg", os.path.join(ROOT, "BUILD")],
                       cwd=ROOT, check=True)
    finally:
        recorder.module = None
    assert recorder.read == {"tests/test_x.py": {"requirements.txt", "flags/digits.cfg",
                                                 "BUILD"}}


def _repository(root, data):
    """A tiny repository: BUILD whose one test target carries `data` beyond the common globs,
    this checker, and a test that reads requirements.txt."""
    (root / "tests").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "tests", "build_data.py"), root / "tests")
    (root / "tests" / "conftest.py").write_text(
        "from build_data import build_data_check, pytest_collectreport, "
        "pytest_collectstart  # noqa: F401\n")
    (root / "tests" / "test_reader.py").write_text(textwrap.dedent("""\
        import os

        def test_reads_the_requirements():
            here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            with open(os.path.join(here, "requirements.txt")) as f:
                assert f.read() == "numpy\\n"
        """))
    (root / "requirements.txt").write_text("numpy\n")
    (root / "BUILD").write_text(textwrap.dedent(f"""\
        TEST_DATA = {{
            "tests/test_reader.py": {data!r},
        }}

        [py_test(
            name = test_file[len("tests/"):-len(".py")],
            srcs = [test_file],
            data = glob(["flags/*.cfg"]) + TEST_DATA.get(test_file, []),
        ) for test_file in [
            "tests/test_reader.py",
        ]]
        """))
    # as `make test` runs it, also when this test itself runs under Bazel (whose runfiles
    # variables turn the checker off in every child)
    plain = {k: v for k, v in os.environ.items() if k not in build_data.BAZEL_VARIABLES}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "tests/test_reader.py"], cwd=root, env=plain,
                          capture_output=True, text=True, timeout=300)


def test_a_pytest_run_fails_on_a_target_that_misses_a_file_its_test_reads(tmp_path):
    done = _repository(tmp_path / "missing", [])
    assert done.returncode != 0, done.stdout
    assert ("tests/test_reader.py reads requirements.txt, which its Bazel target's data does "
            "not carry") in done.stdout, done.stdout
    done = _repository(tmp_path / "carried", ["requirements.txt"])
    assert done.returncode == 0, done.stdout
