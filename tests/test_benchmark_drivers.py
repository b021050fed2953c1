"""The table drivers (benchmarks/*: every one that runs through `ablation.main`) refuse a bad
flag, seed, output path or recorded JSON in one line on stderr with exit status 2 before
anything is trained or written: the results already there stay byte for byte and no run
directory is made. Each case runs the driver as a user does (a subprocess from the repo root);
none trains. Also: a table asked for some seeds keeps the recorded runs of the others, and its
Markdown is written whole or not at all."""

import json
import os
import subprocess
import sys

import pytest

from mpl_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = ("fashion_mnist_ablation", "fashion_mnist_feedback_test", "digits_ablation",
          "two_moons")
RECORD = {"variant": "supervised", "seed": 0, "config": {}, "test_accuracy": 0.5,
          "wall_seconds": 1.0}
# A made-up but well-formed table, as the drivers write it.
RESULTS_JSON = json.dumps({"recipe": "flags/fashion_mnist.cfg", "seeds": [0], "rows": [],
                           "runs": [RECORD]}, indent=2) + "\n"
RESULTS_MD = "| variant | seeds |\n|---|---|\n| supervised | 0 |\n"


def table(module, *args):
    """The finished `python -m benchmarks.MODULE ARGS` (text stdout and stderr)."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def results(tmp_path):
    """OUT (without extension) of a table already written, and its runs directory (absent)."""
    out = tmp_path / "results" / "table"
    out.parent.mkdir()
    out.with_suffix(".json").write_text(RESULTS_JSON)
    out.with_suffix(".md").write_text(RESULTS_MD)
    return out, tmp_path / "runs"


def assert_refused(process, out, runs_dir, json_text=RESULTS_JSON):
    """Exit status 2 and one line "error: ..." on stderr, the results as they were, no runs."""
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert process.returncode == 2, process.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr
    assert out.with_suffix(".json").read_text() == json_text
    assert out.with_suffix(".md").read_text() == RESULTS_MD
    assert not runs_dir.exists()
    return lines[0]


BAD_FLAGS = [
    (["--seeds="], "--seeds is empty"),
    (["--seeds=   "], "--seeds is empty"),
    (["--seeds=a"], "'a' is not a seed"),
    (["--seeds=0 x 2"], "'x' is not a seed"),
    (["--seeds=-1"], "'-1' is not a seed"),
    (["--seeds=0 1 0"], "seed 0 is given twice"),
    (["--student_lr=0"], "--student_lr=0.0 must be > 0"),
    (["--nosuchflag=1"], "nosuchflag"),
    (["stray"], "stray"),
]


@pytest.mark.parametrize("args,message", BAD_FLAGS, ids=lambda v: str(v))
@pytest.mark.parametrize("module", TABLES)
def test_bad_flag_is_one_line(module, args, message, results):
    out, runs_dir = results
    line = assert_refused(table(module, *args, f"--out={out}", f"--runs_dir={runs_dir}"), out,
                          runs_dir)
    assert message in line


@pytest.mark.parametrize("module", TABLES)
def test_out_under_a_file_is_refused_before_training(module, results, tmp_path):
    out, runs_dir = results
    a_file = tmp_path / "afile"
    a_file.write_text("not a directory")
    line = assert_refused(table(module, "--seeds=0", f"--out={a_file / 'sub' / 'table'}",
                                f"--runs_dir={runs_dir}"), out, runs_dir)
    assert f"lies under a file ({a_file})" in line
    assert a_file.read_text() == "not a directory"


@pytest.mark.parametrize("module", TABLES)
def test_out_that_is_a_directory_is_refused(module, results):
    out, runs_dir = results
    (out.parent / "taken.md").mkdir()
    line = assert_refused(table(module, "--seeds=0", f"--out={out.parent / 'taken'}",
                                f"--runs_dir={runs_dir}"), out, runs_dir)
    assert "taken.md is a directory" in line


@pytest.mark.parametrize("module", TABLES)
def test_runs_dir_under_a_file_is_refused(module, results, tmp_path):
    out, _ = results
    a_file = tmp_path / "afile"
    a_file.write_text("")
    line = assert_refused(table(module, "--seeds=0", f"--out={out}", f"--runs_dir={a_file}"),
                          out, a_file / "none")
    assert line.startswith(f"error: --runs_dir={a_file} is a file")


def test_unknown_only_slug_is_exit_2(results):
    out, runs_dir = results
    line = assert_refused(table("fashion_mnist_ablation", "--only=supervised,nonexistent",
                                f"--out={out}", f"--runs_dir={runs_dir}"), out, runs_dir)
    assert "no variant nonexistent" in line and "valid: supervised" in line


@pytest.mark.parametrize("swap,message", [
    ("1-1", "--swap=1-1: 1-1 swaps a class with itself"),
    ("10-11", "--swap=10-11: class 11 does not exist"),
    ("1-7,7-3", "class 7 is in two pairs"),
    ("", "--swap is empty"),
])
def test_bad_swap_is_refused_before_any_run_directory(swap, message, results):
    out, runs_dir = results
    line = assert_refused(table("fashion_mnist_feedback_test", f"--swap={swap}", "--seeds=0",
                                f"--out={out}", f"--runs_dir={runs_dir}"), out, runs_dir)
    assert message in line


DAMAGED = [
    ('{"runs": [{"variant": "supervised", "seed": 0', "JSONDecodeError"),
    ("[1, 2]", "not a JSON object"),
    ('{"runs": [{"variant": "supervised"}]}', "\"runs\"[0] has no 'seed'"),
    ('{"runs": 5}', '"runs" is not a list'),
    ('{"rows": []}', '"runs" is not a list'),
    ('{"runs": [3]}', '"runs"[0] is not a JSON object'),
    (json.dumps({"runs": [{**RECORD, "seed": True}]}), "'seed'"),
    (json.dumps({"runs": [{**RECORD, "config": []}]}), "'config'"),
    (json.dumps({"runs": [{**RECORD, "variant": 1}]}), "'variant'"),
]


@pytest.mark.parametrize("text,problem", DAMAGED, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("module", ["fashion_mnist_ablation", "fashion_mnist_feedback_test"])
def test_damaged_results_json_is_one_line_and_kept(module, text, problem, results):
    out, runs_dir = results
    out.with_suffix(".json").write_text(text)
    line = assert_refused(table(module, "--seeds=0", f"--out={out}", f"--runs_dir={runs_dir}"),
                          out, runs_dir, json_text=text)
    assert f"{out}.json is damaged" in line and problem in line
    assert "move it aside" in line and "git" in line and "--overwrite" not in line


def test_precision_benchmark_bad_accuracy_seeds(results):
    out, runs_dir = results
    line = assert_refused(table("precision_benchmark", "--accuracy_seeds=1 a", f"--out={out}",
                                f"--runs_dir={runs_dir}"), out, runs_dir)
    assert "--accuracy_seeds=1 a: 'a' is not a seed" in line


def test_precision_benchmark_refuses_seeds_it_would_ignore(results):
    out, runs_dir = results
    line = assert_refused(table("precision_benchmark", "--seeds=3", f"--out={out}",
                                f"--runs_dir={runs_dir}"), out, runs_dir)
    assert "--seeds is not used by precision_benchmark" in line and "--accuracy_seeds" in line


@pytest.mark.parametrize("module,own", [("precision_benchmark", "--rounds"),
                                        ("fashion_mnist_feedback_test", "--seeds")])
def test_help_lists_the_drivers_own_flags_not_the_libraries(module, own):
    process = table(module, "--help")
    assert process.returncode == 0, process.stderr
    listed = process.stdout
    for flag in (own, "--out:", "--runs_dir:", "--feedback_weight:"):
        assert flag in listed, flag
    for library_flag in ("--verbosity:", "--test_srcdir:"):  # absl.logging's, absltest's
        assert library_flag not in listed, library_flag


def _feedback_records(runs_dir, seed):
    """Records, as the feedback test writes them, of `seed`'s pretraining and every arm, with
    the configs this checkout's recipe gives (so they are reused, not retrained)."""
    from benchmarks import ablation
    from benchmarks import fashion_mnist_feedback_test as feedback

    base = config_lib.Config.from_flagfile(feedback.RECIPE).replace(select_on_val=False)
    teacher = os.path.join(runs_dir, f"{ablation.slug(feedback.PRETRAIN)}_seed{seed}")
    variants = [(feedback.PRETRAIN, dict(method="supervised", swap_label_pairs="1-7,3-8",
                                         finetune_steps=0)),
                *[(name, dict(o, teacher_init=teacher)) for name, o in feedback.ARMS]]
    return [{"variant": name, "seed": seed, "test_accuracy": 0.5 + seed / 10,
             "wall_seconds": 1.0, "config": json.loads(
                 base.replace(seed=seed, split_seed=seed, **o).validate().to_json())}
            for name, o in variants]


def test_feedback_test_keeps_the_runs_of_seeds_not_asked(tmp_path):
    """--seeds=0 with seeds 0 and 1 recorded (nothing to train): the rows are seed 0's, and
    every run of seed 1 is still in the JSON."""
    out, runs_dir = tmp_path / "feedback", tmp_path / "runs"
    recorded = _feedback_records(str(runs_dir), 0) + _feedback_records(str(runs_dir), 1)
    out.with_suffix(".json").write_text(json.dumps({"runs": recorded}))
    process = table("fashion_mnist_feedback_test", "--seeds=0", f"--out={out}",
                    f"--runs_dir={runs_dir}")
    assert process.returncode == 0, process.stderr
    written = json.loads(out.with_suffix(".json").read_text())
    assert sorted((r["variant"], r["seed"]) for r in written["runs"]) == sorted(
        (r["variant"], r["seed"]) for r in recorded)
    assert written["seeds"] == [0] and all(row["seeds"] == [0] for row in written["rows"])
    assert not runs_dir.exists()


def test_markdown_is_written_whole_or_not_at_all(results):
    """A Markdown table that cannot be written (here: not encodable) leaves the previous one."""
    from benchmarks import ablation

    out, _ = results
    with pytest.raises(UnicodeEncodeError):
        ablation.write(str(out), {"runs": []}, "| \ud800 |\n", show=False)
    assert out.with_suffix(".md").read_text() == RESULTS_MD
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_recorded_run_matches_wherever_its_paths_were():
    """A table continues in another checkout: the Config's path fields (--teacher_init among
    them) are not what a run trained, every other field is."""
    code = """if True:
        from benchmarks import ablation
        from mpl_tf.config import Config
        here = Config(teacher_init="/a/runs/pre", model_dir="/a/runs/x", data_dir="/a/d")
        there = json.loads(here.replace(teacher_init="/b/runs/pre", model_dir="/b/x",
                                        data_dir=None).to_json())
        print(ablation.same_run(there, here), ablation.same_run(there, here.replace(seed=1)))
    """
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "False"], done.stderr
