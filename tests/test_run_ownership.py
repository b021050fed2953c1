"""Touch nothing the user did not give us (issue 21): a run directory is marked as one
(mpl_tf_run.json), --overwrite deletes only what a run wrote and only in a marked directory,
runs made without a marker are adopted only when asked, a lost config.json refuses to resume,
no command ignores a stray argument or flagfile line, ~ in a path is the home directory, run
files have ordinary modes, predict resumes only its own model's output, and an export waits for
no one: it takes the run's lock."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess

import pytest
from absl import flags
from command_testing import error_lines, fingerprint, main_in_process as run_main
from export_testing import make_run

from mpl_tf.durable import files
from mpl_tf import evaluate, predict, publish
from mpl_tf import export as export_command
from mpl_tf import main as main_lib
from mpl_tf.config import Config
from mpl_tf.data.folder import to_tfds
from mpl_tf.durable import lock, preemption, run_dir
from mpl_tf.errors import ConfigError, DamagedFile
from mpl_tf.serving import export

MARKER = "mpl_tf_run.json"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A short run, should a refusal these tests expect not happen (as on the code before issue 21).
QUICK = ["--recipe=two_moons", "--method=supervised", "--train_steps=100", "--log_every=100"]
SHORT = ["--flagfile=flags/two_moons.cfg", "--method=supervised", "--train_steps=200",
         "--log_every=100"]


@pytest.fixture(autouse=True)
def _in_repo():
    os.chdir(REPO)




@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("finished") / "run"
    os.chdir(REPO)
    assert run_main(*SHORT, f"--model_dir={model_dir}") == 0
    return model_dir


# --- 1. the marker, --overwrite, unmarked directories -------------------------------------------

def test_overwrite_never_empties_a_directory_that_only_has_a_config_json(tmp_path, capsys):
    """The issue's reproduction: `--overwrite` used to empty any directory with a config.json."""
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.json").write_text("{}\n")
    (folder / "precious").write_text("years of work")
    assert run_main(*QUICK, f"--model_dir={folder}", "--overwrite") == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --model_dir={folder} is not empty and is not an mpl_tf run directory (no "
        f"{MARKER}; it holds precious); choose an empty or new directory"]
    assert sorted(os.listdir(folder)) == ["config.json", "precious"]
    assert (folder / "config.json").read_text() == "{}\n"


def test_an_unmarked_directory_s_config_json_is_not_overwritten(tmp_path, capsys):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.json").write_text("{}\n")
    assert run_main(*QUICK, f"--model_dir={folder}") == 2
    assert "is not empty and is not an mpl_tf run directory" in capsys.readouterr().err
    assert os.listdir(folder) == ["config.json"] and (folder / "config.json").read_text() == "{}\n"


def test_the_marker_names_the_run(finished):
    from mpl_tf.durable import marker

    contents = json.loads((finished / MARKER).read_text())
    assert contents["format"] == 1 and len(contents["run_id"]) == 32
    assert contents["mpl_tf"] and contents["created"] and "--method=supervised" in " ".join(
        contents["command"])
    saved = json.loads((finished / "config.json").read_text())
    assert contents["config_sha256"] == marker.config_hash(saved)
    # The finished run's record: every file it wrote (TensorBoard's aside), by its sha256.
    assert {"results.json", "config.json", "model/serving.weights.h5",
            "export/saved_model/saved_model.pb"} <= set(contents["files"])
    assert contents["files"]["results.json"] == marker.file_hash(finished / "results.json")


def test_every_entry_a_run_writes_is_a_known_entry(finished):
    assert set(os.listdir(finished)) <= set(run_dir.ENTRIES)
    assert {"config.json", "results.json", "model", "checkpoints", MARKER} <= set(
        os.listdir(finished))


def test_overwrite_deletes_only_what_the_run_wrote_and_says_what_it_left(finished, tmp_path,
                                                                         capsys):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    (copy / "notes.txt").write_text("mine")
    (copy / "plots").mkdir()
    (copy / "plots" / "a.png").write_bytes(b"png")
    old_id = json.loads((copy / MARKER).read_text())["run_id"]
    assert run_main(*SHORT, f"--model_dir={copy}", "--overwrite", "--seed=1") == 0
    assert (copy / "notes.txt").read_text() == "mine" and (copy / "plots" / "a.png").exists()
    assert (f"--overwrite: left notes.txt, plots in {copy} untouched (not written by a run)"
            in capsys.readouterr().out)
    contents = json.loads((copy / MARKER).read_text())
    assert contents["run_id"] != old_id
    # the finished run's record holds the run's files only, not the user's beside them
    assert "results.json" in contents["files"] and not any(
        name == "notes.txt" or name.startswith("plots/") for name in contents["files"])


def _legacy_run(model_dir, extra=None):
    """A run directory of an mpl_tf from before the marker: config.json and checkpoints/."""
    config = Config(model_dir=str(model_dir))
    (model_dir / "checkpoints" / "train").mkdir(parents=True)
    (model_dir / "config.json").write_text(config.to_json())
    if extra:
        (model_dir / extra).write_text("not a run's")
    return config


def test_a_run_without_marker_is_adopted_only_when_asked(tmp_path):
    config = _legacy_run(tmp_path / "old")
    with pytest.raises(ConfigError, match="holds a run without its mpl_tf_run.json.*--adopt"):
        run_dir.prepare(config)
    assert not (tmp_path / "old" / MARKER).exists()
    run_dir.prepare(config, adopt=True)
    lock.release(str(tmp_path / "old"))
    from mpl_tf.durable import marker

    assert marker.read(tmp_path / "old")["config_sha256"] == marker.config_hash(
        json.loads(config.to_json()))


def test_a_run_without_marker_holding_other_files_is_not_adopted(tmp_path):
    config = _legacy_run(tmp_path / "old", extra="thesis.tex")
    with pytest.raises(ConfigError, match="not an mpl_tf run directory.*thesis.tex"):
        run_dir.prepare(config, overwrite=True, adopt=True)
    assert sorted(os.listdir(tmp_path / "old")) == ["checkpoints", "config.json", "thesis.tex"]


@pytest.mark.parametrize("hidden", [".tmp-build", ".export-photos", ".overwritten-notes"])
def test_hidden_names_like_a_run_s_leftovers_make_an_unmarked_directory_not_empty(tmp_path,
                                                                                  hidden):
    """Only a marked directory's leftovers can be a run's: elsewhere they are the user's."""
    folder = tmp_path / "home"
    (folder / hidden).mkdir(parents=True)
    (folder / hidden / "draft.txt").write_text("important")
    before = fingerprint(folder)
    with pytest.raises(ConfigError, match=f"not an mpl_tf run directory .*it holds {hidden}"):
        run_dir.prepare(Config(model_dir=str(folder)), overwrite=True)
    assert fingerprint(folder) == before and os.listdir(folder) == [hidden]


@pytest.mark.parametrize("content", ["", "my lockfile notes\n", "1\n", "[1, 2]",
                                     '{"pid": "x", "host": "h"}'])
def test_a_refused_directory_s_lock_file_is_left_alone(tmp_path, content):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / ".lock").write_text(content)
    (folder / "data.txt").write_text("data")
    with pytest.raises(ConfigError, match="not an mpl_tf run directory"):
        run_dir.prepare(Config(model_dir=str(folder)))
    assert (folder / ".lock").read_text() == content and (folder / "data.txt").exists()


@pytest.mark.parametrize("content", ["my lockfile notes\n", "4242\n", "[1, 2]", "null",
                                     '{"pid": true, "host": "h"}'])
def test_a_lock_mpl_tf_did_not_write_is_one_line_and_kept(finished, tmp_path, content):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    (copy / ".lock").write_text(content)
    with pytest.raises(ConfigError) as error:
        lock.acquire(str(copy))
    assert str(error.value) == (f"{copy / '.lock'} is not a lock mpl_tf wrote (a JSON object "
                                "with pid and host); it is left alone: delete it yourself if no "
                                "mpl_tf process uses this directory")
    assert (copy / ".lock").read_text() == content


def test_an_empty_lock_is_a_holder_killed_while_writing_it(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    (copy / ".lock").write_text("")
    lock.acquire(str(copy))
    try:
        assert json.loads((copy / ".lock").read_text())["pid"] == os.getpid()
    finally:
        lock.release(str(copy))


@pytest.mark.parametrize("entry", ["export", "checkpoints", "model"])
def test_a_run_directory_is_never_made_inside_another_run(finished, tmp_path, entry):
    """That run's --overwrite, finetuning or export would delete it with its entry."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    inner = copy / entry / "mine"
    before = fingerprint(copy)
    with pytest.raises(ConfigError) as error:
        run_dir.prepare(Config(model_dir=str(inner)))
    assert str(error.value) == (f"--model_dir={inner} is inside the run directory {copy} (it "
                                f"holds {MARKER}), whose --overwrite, finetuning or export would "
                                "delete it; choose a directory outside that run")
    assert fingerprint(copy) == before and not inner.exists()


def test_adopt_takes_only_a_config_json_an_mpl_tf_run_wrote(tmp_path):
    """Another tool's run (a JSON object without the fields every mpl_tf config has) is not
    adopted, so --overwrite cannot delete it."""
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "model").mkdir()
    (other / "model" / "pytorch_model.bin").write_bytes(b"w")
    (other / "config.json").write_text('{"architectures": ["BertModel"], "hidden_size": 768}')
    (other / "results.json").write_text('{"eval_f1": 0.91}')
    before = fingerprint(other)
    with pytest.raises(DamagedFile) as error:
        run_dir.prepare(Config(model_dir=str(other)), overwrite=True, adopt=True)
    assert str(error.value).startswith(f"{other / 'config.json'} is damaged (not an mpl_tf "
                                       "config: no dataset, method, model, seed, train_steps)")
    assert fingerprint(other) == before


@pytest.mark.parametrize("entry", ["logs", "model", "checkpoints"])
def test_a_symbolic_link_among_a_run_s_entries_is_refused_unless_overwrite(finished, tmp_path,
                                                                           entry):
    """Finetuning deleted logs/finetune through a linked logs/, outside the run."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    target = tmp_path / "elsewhere"
    shutil.move(str(copy / entry), str(target))
    (target / "keep.txt").write_text("mine")
    os.symlink(target, copy / entry)
    before = fingerprint(target)
    for mode in ("train", "finetune"):
        with pytest.raises(ConfigError) as error:
            run_dir.prepare(Config(model_dir=str(copy), mode=mode))
        assert str(error.value) == (f"--model_dir={copy}: {entry} is a symbolic link; a run "
                                    "writes and deletes inside its own entries only: replace "
                                    "the link with a copy, or pass --overwrite to start over")
    assert fingerprint(target) == before
    run_dir.prepare(Config(model_dir=str(copy), seed=5), overwrite=True)  # the link only goes
    lock.release(str(copy))
    assert fingerprint(target) == before and not (copy / entry).exists()


def test_a_damaged_marker_refuses_even_overwrite(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    (copy / MARKER).write_text("{not json")
    with pytest.raises(Exception, match="mpl_tf_run.json is damaged"):
        run_dir.prepare(Config(model_dir=str(copy)), overwrite=True)
    assert (copy / "results.json").exists()


@pytest.mark.parametrize("key", ["../victim", "/tmp/victim", "export/saved_model/../../../v",
                                 "./config.json", "model//x", ""])
def test_a_marker_naming_a_file_outside_the_run_is_damaged(finished, tmp_path, key):
    """Its records are checked and deleted by path: a key outside the run is never trusted."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    contents = json.loads((copy / MARKER).read_text())
    contents["files"][key] = "0" * 64
    (copy / MARKER).write_text(json.dumps(contents))
    before = fingerprint(tmp_path)
    with pytest.raises(Exception, match=f"mpl_tf_run.json is damaged \\(its files record names "
                                        f"'{re.escape(key)}', which is not a path inside the run"):
        run_dir.prepare(Config(model_dir=str(copy)), overwrite=True)
    assert fingerprint(tmp_path) == before


def test_another_tool_s_config_json_beside_a_copied_export_is_not_read_as_the_run_s(
        finished, tmp_path, capsys):
    elsewhere = tmp_path / "x"
    shutil.copytree(finished / "export", elsewhere / "export")
    (elsewhere / "config.json").write_text('{"db": "prod"}')
    assert evaluate.main(["evaluate", f"--saved_model={elsewhere / 'export' / 'saved_model'}",
                          "--dataset=two_moons"]) == 2
    [line] = error_lines(capsys.readouterr())
    assert line.startswith(f"error: {elsewhere / 'config.json'} is damaged (not an mpl_tf "
                           "config: no dataset, method, model, seed, train_steps)")


# --- 5. a lost config.json does not resume another config's checkpoints --------------------------

def _stop_after_two_step_calls(model_dir, *args):
    """Runs the short command on `model_dir`, stopped by SIGTERM after two step calls
    (checkpoint 200 of 400 steps)."""
    polls = []

    def requested():
        polls.append(None)
        return signal.SIGTERM if len(polls) >= 2 else None

    original = preemption.requested
    preemption.requested = requested
    try:
        os.chdir(REPO)
        assert run_main(*SHORT, "--train_steps=400", *args, f"--model_dir={model_dir}") == (
            128 + signal.SIGTERM)
    finally:
        preemption.requested = original
    assert not (model_dir / "results.json").exists()
    return model_dir


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    return _stop_after_two_step_calls(tmp_path_factory.mktemp("stopped") / "run")


@pytest.mark.parametrize("flag", ["--seed=3", "--mlp_hidden=4"])
def test_a_deleted_config_json_refuses_to_resume(stopped, tmp_path, capsys, flag):
    copy = tmp_path / "run"
    shutil.copytree(stopped, copy)
    (copy / "config.json").unlink()
    before = fingerprint(copy)
    capsys.readouterr()
    assert run_main(*SHORT, "--train_steps=400", flag, f"--model_dir={copy}") == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --model_dir={copy} holds checkpoints but its config.json is missing, so it "
        "cannot tell which settings they are of: restore it from a copy of the run, or pass "
        "--overwrite to start over"]
    assert fingerprint(copy) == before


def test_another_run_s_config_json_refuses_to_resume(stopped, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(stopped, copy)
    saved = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**saved, "seed": 3}))  # matches the flags
    capsys.readouterr()
    assert run_main(*SHORT, "--train_steps=400", "--seed=3", f"--model_dir={copy}") == 2
    lines = error_lines(capsys.readouterr())
    assert len(lines) == 1 and "config.json is not this run's config" in lines[0]


def test_another_run_s_checkpoints_are_not_resumed(stopped, tmp_path, capsys):
    """The marker records each checkpoint as it is saved: those of another run (the same
    command with another seed), which TensorFlow restores without a word, are skipped, and
    with none of the run's own left it refuses."""
    other = _stop_after_two_step_calls(tmp_path / "other", "--seed=1")
    copy = tmp_path / "run"
    shutil.copytree(stopped, copy)
    for name in os.listdir(other / "checkpoints" / "train"):
        if name.startswith("ckpt-"):
            shutil.copyfile(other / "checkpoints" / "train" / name,
                            copy / "checkpoints" / "train" / name)
    capsys.readouterr()
    assert run_main(*SHORT, "--train_steps=400", f"--model_dir={copy}") == 1
    lines = error_lines(capsys.readouterr())
    assert lines[-1].startswith("error: none of the") and "is readable" in lines[-1]
    assert "is not the file the run wrote" in lines[0]
    assert not (copy / "results.json").exists()


def test_a_damaged_csv_log_stops_a_resume_in_one_line(stopped, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(stopped, copy)
    (copy / "train_log.csv").write_bytes(b"\x00\xff not the CSV Keras wrote")
    capsys.readouterr()
    assert run_main(*SHORT, "--train_steps=400", f"--model_dir={copy}") == 2
    lines = error_lines(capsys.readouterr())
    assert lines[-1].startswith(f"error: {copy / 'train_log.csv'} is damaged (")
    assert not (copy / "results.json").exists()


# --- 2. positional arguments and flagfile lines ---------------------------------------------------

COMMANDS = {"main": main_lib, "evaluate": evaluate, "predict": predict, "export": export_command,
            "publish": publish, "folder_to_tfds": to_tfds}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_positional_argument(command, tmp_path, capsys):
    flags.FLAGS.unparse_flags()
    assert COMMANDS[command].main([command, "stray"]) == 2
    assert error_lines(capsys.readouterr()) == [
        "error: unexpected argument 'stray': these commands take flags only"]


@pytest.mark.parametrize("args,word,hint", [
    (["--overwrite", "false"], "false", "--overwrite=false"),
    (["--nooverwrite", "true"], "true", "--overwrite=true"),
    (["--select_on_val", "0"], "0", "--select_on_val=0"),
])
def test_a_word_after_a_boolean_flag_is_refused_with_a_hint(tmp_path, capsys, args, word, hint):
    assert run_main(*QUICK, f"--model_dir={tmp_path / 'run'}", *args) == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: unexpected argument '{word}': these commands take flags only (a boolean flag "
        f"takes its value after '=': {hint})"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("nested", [False, True], ids=["flagfile", "nested"])
def test_a_flagfile_line_that_is_not_a_flag_names_the_file_and_line(tmp_path, capsys, nested):
    inner = tmp_path / "inner.cfg"
    inner.write_text("# batch sizes\n--labeled_batch_size=12\nlabeled_batch_size 5\n")
    outer = tmp_path / "outer.cfg"
    outer.write_text(f"--flagfile={inner}\n")
    given = outer if nested else inner
    assert run_main(*QUICK, f"--flagfile={given}",
                    f"--model_dir={tmp_path / 'run'}") == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: {inner}:3: 'labeled_batch_size 5' is not a flag (a flagfile line is "
        "--name=value, a comment starting with # or //, or blank)"]


# --- 6. ~ in paths, file modes --------------------------------------------------------------------

def test_a_tilde_in_a_path_flag_is_the_home_directory(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert run_main(f"--flagfile={REPO}/flags/two_moons.cfg", "--method=supervised",
                    "--train_steps=100", "--log_every=100", "--model_dir=~/runs/x") == 0
    assert (home / "runs" / "x" / "results.json").exists() and not (tmp_path / "~").exists()
    capsys.readouterr()
    assert evaluate.main(["evaluate", "--model_dir=~/runs/x", "--output=~/eval.json"]) == 0
    assert (home / "eval.json").exists() and not (tmp_path / "~").exists()


def test_every_path_flag_of_the_config_is_expanded():
    import dataclasses

    from mpl_tf import arguments

    paths = {f.name for f in dataclasses.fields(Config) if f.metadata["spec"].kind == "path"}
    assert paths and paths <= set(arguments.PATH_FLAGS)


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_run_files_have_ordinary_modes(tmp_path, umask):
    previous = os.umask(umask)
    try:
        files.write_json(str(tmp_path / "a.json"), {"a": 1})
        make_run(tmp_path / "run")
        export.export_run(str(tmp_path / "run"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "run" / "results.json").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "run" / "export").st_mode) == 0o777 & ~umask


# --- 3. predict's output belongs to one model -----------------------------------------------------

@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two exported image models (4 and 3 classes) and a folder of 5 images."""
    import numpy as np
    from PIL import Image

    base = tmp_path_factory.mktemp("predict")
    for name, classes in (("a", 4), ("b", 3)):
        make_run(base / name, num_classes=classes)
        export.export_run(str(base / name))
    images = base / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return base


def _predict(base, model, output, *more):
    return predict.main(["predict", f"--saved_model={base / model}/export/saved_model",
                         f"--images={base / 'images'}", f"--output={output}", "--batch_size=2",
                         *more])


def test_an_interrupted_output_resumes_only_with_its_own_model(two_models, tmp_path, capsys):
    output = tmp_path / "preds.csv"
    assert _predict(two_models, "a", output) == 0
    os.rename(output, f"{output}.partial")  # as an interrupted call leaves it
    rows = (tmp_path / "preds.csv.partial").read_text()
    capsys.readouterr()
    assert _predict(two_models, "b", output) == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --output={output}: {output}.partial was made by another --saved_model "
        f"({output}.meta.json); pass --overwrite to replace it, or choose another --output"]
    assert (tmp_path / "preds.csv.partial").read_text() == rows and not output.exists()
    assert _predict(two_models, "b", output, "--overwrite") == 0
    assert "class_3" not in output.read_text() and len(output.read_text().splitlines()) == 6
    assert _predict(two_models, "a", output) == 2  # b's complete output: not replaced by a's
    assert "made by another --saved_model" in capsys.readouterr().err


def test_an_output_predict_did_not_write_is_not_replaced(two_models, tmp_path, capsys):
    output = tmp_path / "mine.csv"
    output.write_text("my own table\n")
    assert _predict(two_models, "a", output) == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --output={output}: {output} exists and no {output}.meta.json says what made "
        "it; pass --overwrite to replace it, or choose another --output"]
    assert output.read_text() == "my own table\n"


def test_a_meta_file_predict_did_not_write_is_not_replaced(two_models, tmp_path, capsys):
    output = tmp_path / "report.csv"
    meta = tmp_path / "report.csv.meta.json"
    meta.write_text('{"owner": "me", "schema": "v7"}')
    assert _predict(two_models, "a", output) == 2
    [line] = error_lines(capsys.readouterr())
    assert line.startswith(f"error: {meta} is damaged (") and line.endswith(
        f"it is not predict's record of --output={output}, so it is left alone: choose another "
        "--output")
    assert meta.read_text() == '{"owner": "me", "schema": "v7"}' and not output.exists()


def test_an_output_that_is_a_directory_fails_before_classifying(two_models, tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setattr(predict, "load_signature", lambda *a: pytest.fail("classified"))
    assert _predict(two_models, "a", tmp_path) == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --output={tmp_path} is a directory; pass a file name, e.g. "
        f"{tmp_path / 'predictions.csv'}"]


# --- 4. a file read back from a run without a marker is checked too -------------------------------

def test_truncated_weights_of_an_unmarked_run_are_one_line(tmp_path, capsys):
    make_run(tmp_path / "run")
    weights = tmp_path / "run" / run_dir.SERVING_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    assert export_command.main(["export", f"--model_dir={tmp_path / 'run'}"]) == 2
    lines = error_lines(capsys.readouterr())
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {weights} cannot be read as the network's weights")
    assert not (tmp_path / "run" / "export").exists()


def test_a_config_json_with_a_bad_value_is_one_line(tmp_path, capsys):
    make_run(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**saved, "seed": "three"}))
    assert export_command.main(["export", f"--model_dir={tmp_path / 'run'}"]) == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: {tmp_path / 'run' / 'config.json'} is damaged (seed='three' must be an "
        "integer): restore it from a copy of the run, or train again into a new directory (or "
        "with --overwrite)"]


# --- 7. an export takes the run's lock ------------------------------------------------------------

def test_a_second_export_of_a_run_is_refused_while_one_runs(tmp_path, capsys):
    make_run(tmp_path / "run")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "run" / lock.LOCK_NAME).write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname()}))
        assert export_command.main(["export", f"--model_dir={tmp_path / 'run'}"]) == 2
    finally:
        holder.kill()
        holder.wait()
    lines = error_lines(capsys.readouterr())
    assert len(lines) == 1 and f"is in use by process {holder.pid}" in lines[0]
    assert not (tmp_path / "run" / "export").exists()
    assert export_command.main(["export", f"--model_dir={tmp_path / 'run'}"]) == 0  # stale now
    assert not (tmp_path / "run" / lock.LOCK_NAME).exists()
