"""The run directory as a safe contract: relocatable, --overwrite leaves nothing of the old run,
one writer at a time, progress never silently thrown away, finetuning that asks before
replacing, evaluation on the run's own split, wall time over every attempt, and divergence said
out loud (issue 13)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from command_testing import assert_same_checkpoints, error_lines, fingerprint
from command_testing import main_in_process as run_main
from export_testing import make_run

from mpl_tf.durable import checkpoints
from mpl_tf import evaluate
from mpl_tf.serving import export
from mpl_tf.durable import preemption
from mpl_tf.durable import files
from mpl_tf.durable import run_dir
from mpl_tf.durable import lock
from mpl_tf.method.build import build_model
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError, TrainingError
from mpl_tf.data import sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two Moons, supervised (no control network to train for the figure), 500 steps.
SHORT = ["--flagfile=flags/two_moons.cfg", "--method=supervised", "--train_steps=500",
         "--log_every=500"]
FINETUNE = ["--finetune_steps=50", "--finetune_lr=0.01", "--finetune_batch_size=12"]




@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run that finetuned after training (lr 0.01, batch 12, 50 steps)."""
    model_dir = tmp_path_factory.mktemp("finished") / "run"
    assert run_main(*SHORT, *FINETUNE, f"--model_dir={model_dir}") == 0
    return model_dir


def copy_of(finished, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(finished, target, symlinks=True)
    return target


def test_a_copied_or_moved_run_finetunes_in_place(finished, tmp_path, capsys):
    before = fingerprint(finished)
    copy = copy_of(finished, tmp_path)
    assert run_main(f"--model_dir={copy}", "--mode=finetune", "--overwrite",
                    "--finetune_steps=20") == 0
    assert str(copy / "results.json") in capsys.readouterr().out
    assert json.loads((copy / "results.json").read_text())["finetune_steps"] == 20
    assert fingerprint(finished) == before, "finetuning the copy wrote into the original"

    moved = tmp_path / "moved"
    os.rename(copy, moved)
    assert run_main(f"--model_dir={moved}", "--mode=finetune", "--overwrite",
                    "--finetune_steps=10") == 0
    assert json.loads((moved / "results.json").read_text())["finetune_steps"] == 10
    assert not copy.exists()


def test_finetuning_asks_before_replacing_and_keeps_the_recorded_settings(
        finished, tmp_path, capsys):
    copy = copy_of(finished, tmp_path)
    capsys.readouterr()
    # An earlier finetuning result is not replaced without asking ...
    assert run_main(f"--model_dir={copy}", "--mode=finetune") == 2
    assert error_lines(capsys.readouterr()) == [
        f"error: --model_dir={copy} already holds a finetuned result ({copy}/results.json); "
        "pass --overwrite to replace it (the trained network is finetuned again)"]
    # ... and with --overwrite, no finetuning flags: the run's recorded settings, not defaults.
    assert run_main(f"--model_dir={copy}", "--mode=finetune", "--overwrite") == 0
    results = json.loads((copy / "results.json").read_text())
    assert (results["finetune_steps"], results["finetune_lr"],
            results["finetune_batch_size"]) == (50, 0.01, 12)
    # Wall time: the training attempt plus this finetuning, each recorded.
    assert len(results["wall_seconds_per_attempt"]) == 2
    assert results["wall_seconds"] == pytest.approx(sum(results["wall_seconds_per_attempt"]))


def test_finetuning_refuses_a_flag_it_would_ignore(finished, tmp_path, capsys):
    """--mode=finetune keeps the run's settings, so --method=fixmatch (or another --seed) was
    silently ignored; a value other than the recorded one is refused, and the training command
    repeated with --mode=finetune (every value the recorded one) still finetunes."""
    copy = copy_of(finished, tmp_path)
    before = fingerprint(copy)
    capsys.readouterr()
    assert run_main(f"--model_dir={copy}", "--mode=finetune", "--overwrite",
                    "--method=fixmatch") == 2
    assert error_lines(capsys.readouterr()) == [
        "error: --method=fixmatch is not the run's --method=supervised (its config.json): "
        "--mode=finetune keeps the run's settings and takes only --finetune_steps, "
        "--finetune_lr, --finetune_batch_size from the command line; drop --method"]
    # set by a recipe, not typed: the line names what to drop
    assert run_main(f"--model_dir={copy}", "--mode=finetune", "--recipe=two_moons") == 2
    [line] = error_lines(capsys.readouterr())
    assert "is not the run's" in line and "drop the --recipe or --flagfile that sets --" in line
    assert fingerprint(copy) == before
    os.chdir(REPO)
    assert run_main(*SHORT, *FINETUNE, f"--model_dir={copy}", "--mode=finetune",
                    "--overwrite") == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run that has never been finetuned."""
    model_dir = tmp_path_factory.mktemp("trained") / "run"
    assert run_main(*SHORT, f"--model_dir={model_dir}") == 0
    return model_dir


def _sigterm_at_second_poll(monkeypatch):
    """The training loop sees a SIGTERM at its second poll, i.e. after two step calls."""
    polls = []

    def requested():
        polls.append(None)
        return signal.SIGTERM if len(polls) >= 2 else None

    monkeypatch.setattr(preemption, "requested", requested)


@pytest.mark.parametrize("refinetune", [False, True], ids=["first", "with_overwrite"])
def test_a_preempted_finetuning_resumes_where_it_stopped(
        trained, finished, tmp_path, capsys, monkeypatch, refinetune):
    """--mode=finetune stopped part way resumes at its checkpoint, to the same weights as an
    uninterrupted finetuning, whether it is the run's first or replaces an earlier one."""
    source = finished if refinetune else trained
    whole, stopped = copy_of(source, tmp_path, "whole"), copy_of(source, tmp_path, "stopped")
    command = ["--mode=finetune", "--finetune_steps=60", "--finetune_lr=0.02",
               "--finetune_batch_size=12", *(["--overwrite"] if refinetune else [])]
    assert run_main(f"--model_dir={whole}", *command) == 0
    before = (stopped / "results.json").read_text()

    with monkeypatch.context() as patched:
        _sigterm_at_second_poll(patched)
        assert run_main(f"--model_dir={stopped}", *command) == 128 + signal.SIGTERM
    directory = checkpoints.directory(str(stopped), "finetune")
    assert error_lines(capsys.readouterr()) == [
        f"stopped by SIGTERM: saved a checkpoint at step 40 in {directory}; rerun the same "
        "command to resume from there"]
    assert (stopped / "results.json").read_text() == before

    assert run_main(f"--model_dir={stopped}", *command) == 0
    assert "Resuming finetune from step 40" in capsys.readouterr().out
    assert_same_checkpoints(whole, stopped, "finetune", 60, more_than=5)
    results = json.loads((stopped / "results.json").read_text())
    assert (results["finetune_steps"], results["finetune_lr"]) == (60, 0.02)
    assert results["test_accuracy"] == json.loads((whole / "results.json").read_text())[
        "test_accuracy"]
    # The training attempt (which finetuned too, in `finished`), then the two finetuning ones.
    assert len(results["wall_seconds_per_attempt"]) == 3


def test_an_interrupted_finetuning_of_other_settings_starts_over(trained, tmp_path, capsys,
                                                                 monkeypatch):
    stopped = copy_of(trained, tmp_path)
    with monkeypatch.context() as patched:
        _sigterm_at_second_poll(patched)
        assert run_main(f"--model_dir={stopped}", "--mode=finetune", "--finetune_steps=60",
                        "--finetune_batch_size=12") == 128 + signal.SIGTERM
    capsys.readouterr()
    assert run_main(f"--model_dir={stopped}", "--mode=finetune", "--finetune_steps=80",
                    "--finetune_batch_size=12") == 0
    assert "Resuming finetune" not in capsys.readouterr().out
    assert checkpoints.steps_present(checkpoints.directory(str(stopped), "finetune")) == [80]


def test_overwrite_leaves_nothing_of_the_old_run(finished, tmp_path):
    copy = copy_of(finished, tmp_path)
    (copy / "notes.txt").write_text("the user's, not the run's: kept")
    started = time.time() - 1
    assert run_main(*SHORT, f"--model_dir={copy}", "--overwrite", "--seed=1") == 0
    for gone in (run_dir.TRAINED_WEIGHTS, "finetune_log.csv",
                 os.path.join("checkpoints", "finetune"), os.path.join("logs", "finetune")):
        assert not (copy / gone).exists(), gone
    assert (copy / "notes.txt").exists()
    for name in fingerprint(copy):
        assert name == "notes.txt" or os.path.getmtime(copy / name) >= started, (
            f"{name} is the old run's")
    # A later finetuning finetunes the new network, not the old run's trained one.
    assert json.loads((copy / "config.json").read_text())["seed"] == 1


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not an mpl_tf run directory"):
        run_dir.prepare(Config(model_dir=str(tmp_path)), overwrite=True)
    assert os.listdir(tmp_path) == ["thesis.tex"]


HOLD = ("import sys, time\nfrom mpl_tf.durable import lock\nlock.acquire(sys.argv[1])\n"
        "print('held', flush=True)\ntime.sleep(120)\n")


def test_a_second_run_is_refused_naming_the_holder_and_a_dead_holder_does_not_block(tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(model_dir)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, "-m", "mpl_tf.main", *SHORT,
                                 f"--model_dir={model_dir}"], cwd=REPO, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert f"process {holder.pid} on host {socket.gethostname()}" in lines[0]
        assert os.listdir(model_dir) == [lock.LOCK_NAME]
    finally:
        holder.kill()  # like kill -9: the lock stays behind
        holder.wait()
    assert (model_dir / lock.LOCK_NAME).exists()
    run_dir.prepare(Config(model_dir=str(model_dir)))  # the stale lock is taken over
    assert json.loads((model_dir / lock.LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release(str(model_dir))
    assert not (model_dir / lock.LOCK_NAME).exists()


def _two_checkpoints(directory):
    """A manager with checkpoints 1 (student weight 1) and 2 (weight 2) in `directory`."""
    config = Config(mlp_hidden=(4,), train_steps=2, log_every=1)
    model = build_model(config, (2,), 2)
    saver = checkpoints.manager(model, str(directory))
    for step in (1, 2):
        model.student.trainable_variables[0].assign(
            tf.fill(model.student.trainable_variables[0].shape, float(step)))
        saver.save(checkpoint_number=step)
    return build_model(config, (2,), 2)


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_lost_or_garbled_state_file_still_resumes_from_the_newest(tmp_path, damage):
    fresh = _two_checkpoints(tmp_path)
    state = tmp_path / "checkpoint"
    if damage == "deleted":
        state.unlink()
    else:
        state.write_bytes(b"\x00\xffnot a checkpoint state{{")
    restored = checkpoints.restore_latest(checkpoints.manager(fresh, str(tmp_path)))
    assert restored == str(tmp_path / "ckpt-2")
    np.testing.assert_array_equal(fresh.student.trainable_variables[0].numpy(), 2.0)
    assert "ckpt-2" in state.read_text() and str(tmp_path) not in state.read_text()


def test_no_readable_checkpoint_refuses_instead_of_starting_over(tmp_path):
    fresh = _two_checkpoints(tmp_path)
    for step in (1, 2):
        with open(tmp_path / f"ckpt-{step}.data-00000-of-00001", "r+b") as f:
            f.truncate(3)
    with pytest.raises(TrainingError, match="none of the 2 checkpoints .* is readable.*"
                                            "--overwrite"):
        checkpoints.restore_latest(checkpoints.manager(fresh, str(tmp_path)))


@pytest.fixture
def digits_run(tmp_path):
    """An exported (untrained) digits run with 40 labels, split seed 7 and its recorded split."""
    model_dir = tmp_path / "run"
    network = make_run(model_dir, input_shape=(16, 16, 1), num_classes=10, dataset="digits")
    data = sources.load(Config.from_json(str(model_dir / "config.json")))
    files.write_json(str(model_dir / "labeled_indices.json"),
                       {"dataset": "digits", "split_seed": 7,
                        "indices": data.labeled_indices.tolist(), "ids": [],
                        "val_indices": data.val_indices.tolist()})
    export.export_run(str(model_dir))
    return model_dir, network, data


def test_evaluating_an_exported_run_uses_its_recorded_split(digits_run, tmp_path, capsys):
    model_dir, network, data = digits_run
    saved_model = model_dir / "export" / "saved_model"
    assert evaluate.main(["evaluate", f"--saved_model={saved_model}", "--dataset=digits",
                          "--split=val"]) == 0
    report = json.loads(capsys.readouterr().out)
    predictions = np.argmax(network(data.val_images, training=False), axis=-1)
    assert report["top1_accuracy"] == pytest.approx(float(np.mean(predictions == data.val_labels)))
    assert report["num_examples"] == len(data.val_labels)

    assert evaluate.main(["evaluate", f"--saved_model={saved_model}", "--split=val",
                          "--split_seed=3"]) == 2
    assert "different validation split" in capsys.readouterr().err
    alone = tmp_path / "alone"
    shutil.copytree(saved_model, alone)
    assert evaluate.main(["evaluate", f"--saved_model={alone}", "--dataset=digits",
                          "--split=val"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the run's recorded split" in err


def test_a_diverged_run_says_so(tmp_path, capsys):
    model_dir = tmp_path / "run"
    assert run_main(*SHORT, "--train_steps=1000", "--teacher_lr=1000",
                    f"--model_dir={model_dir}") == 0
    results = json.loads((model_dir / "results.json").read_text())
    assert results["diverged"] is True and results["warnings"]
    assert "warning: the run diverged" in capsys.readouterr().err


def test_a_healthy_run_has_no_warnings(finished):
    results = json.loads((finished / "results.json").read_text())
    assert results["diverged"] is False and results["warnings"] == []
