"""Durability: kill -9 mid-run and rerun the same command -> the same final weights and the
same model selection as an uninterrupted run; an unreadable newest checkpoint falls back to the
previous one."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from command_testing import assert_same_checkpoints, signal_when

from mpl_tf.durable import checkpoints
from mpl_tf.durable import run_dir
from mpl_tf.durable import lock
from mpl_tf.method.build import build_model
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError
from mpl_tf.run.selection import SelectOnValidation, selection_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = [sys.executable, "-m", "mpl_tf.main", "--flagfile=flags/two_moons.cfg",
           "--train_steps=2000", "--log_every=500", "--steps_per_execution=50",
           "--ema_decay=0.99", "--momentum=0.9", "--nesterov", "--select_on_val"]
ENV = {**os.environ, "TF_DETERMINISTIC_OPS": "1"}


def _run(model_dir):
    return subprocess.run([*COMMAND, f"--model_dir={model_dir}"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)


def test_kill_9_and_rerun_equals_an_uninterrupted_run(tmp_path):
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    assert _run(whole).returncode == 0

    first = os.path.join(checkpoints.directory(interrupted, "train"), "ckpt-1000.index")
    signal_when([*COMMAND, f"--model_dir={interrupted}"], first, signal.SIGKILL, env=ENV)
    assert not (interrupted / "results.json").exists(), "killed too late: the run had finished"

    resumed = _run(interrupted)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming train from step" in resumed.stdout
    assert_same_checkpoints(whole, interrupted, "train", 2000, more_than=10)
    assert (whole / "model" / "serving.weights.h5").read_bytes() != b""
    # Selection saw the epochs before the kill too (this run's best is the first, at step 500,
    # before the resume at 1000): same epoch, same weights, same accuracies.
    chosen, chosen_after_kill = (json.loads((d / "results.json").read_text())
                                 for d in (whole, interrupted))
    for key in ("selected_step", "val_accuracy", "test_accuracy"):
        assert chosen[key] == chosen_after_kill[key], key


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    config = Config(model_dir=str(tmp_path), mlp_hidden=(4,), train_steps=2, log_every=1)
    model = build_model(config, (2,), 2)
    saver = checkpoints.manager(model, str(tmp_path / "ckpt"))
    model.student.trainable_variables[0].assign(tf.ones_like(model.student.trainable_variables[0]))
    saver.save(checkpoint_number=1)
    model.student.trainable_variables[0].assign(tf.zeros_like(model.student.trainable_variables[0]))
    newest = saver.save(checkpoint_number=2)
    with open(newest + ".data-00000-of-00001", "r+b") as f:
        f.truncate(3)

    fresh = build_model(config, (2,), 2)
    restored = checkpoints.restore_latest(checkpoints.manager(fresh, str(tmp_path / "ckpt")))
    assert restored.endswith("ckpt-1")
    assert "ckpt-2 is unreadable" in capsys.readouterr().err
    np.testing.assert_array_equal(fresh.student.trainable_variables[0].numpy(), 1.0)


def test_selection_state_is_saved_restored_and_pruned_with_the_checkpoints(tmp_path):
    saved = SelectOnValidation(data=None, batch_size=1)
    saved.best_accuracy, saved.best_step = 0.75, 500
    saved.best_weights = [np.arange(3.0), np.ones((2, 2), np.float32)]
    saved.save(str(tmp_path), 1000)
    fresh = SelectOnValidation(data=None, batch_size=1)
    fresh.save(str(tmp_path), 1500)  # nothing selected yet

    restored = SelectOnValidation(data=None, batch_size=1)
    restored.restore(str(tmp_path), 1000)
    assert (restored.best_accuracy, restored.best_step) == (0.75, 500)
    for a, b in zip(restored.best_weights, saved.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    empty = SelectOnValidation(data=None, batch_size=1)
    empty.restore(str(tmp_path), 1500)
    assert (empty.best_accuracy, empty.best_step, empty.best_weights) == (-1.0, None, None)
    missing = SelectOnValidation(data=None, batch_size=1)
    missing.restore(str(tmp_path), 2000)  # a run dir from before selection was checkpointed
    assert missing.best_step is None

    saved.prune(str(tmp_path), kept_steps=[1500])
    assert not os.path.exists(selection_path(str(tmp_path), 1000))
    assert os.path.exists(selection_path(str(tmp_path), 1500))


def test_a_different_config_refuses_to_resume(tmp_path):
    model_dir = tmp_path / "run"
    # The directory a stopped run of the command with --train_steps=500 leaves.
    flagfile = f"--flagfile={os.path.join(REPO, 'flags', 'two_moons.cfg')}"
    run_dir.prepare(Config.from_args([flagfile, *COMMAND[4:], f"--model_dir={model_dir}",
                                      "--train_steps=500"]).validate())
    (model_dir / "checkpoints").mkdir()
    lock.release(str(model_dir))
    again = subprocess.run([*COMMAND, f"--model_dir={model_dir}", "--train_steps=1000",
                            "--teacher_lr=0.5"], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: --model_dir={model_dir} holds checkpoints of a run with a different config "
        "(teacher_lr, train_steps); pass --overwrite to start over"]


def test_a_config_saved_before_a_field_existed_resumes_at_its_default(tmp_path):
    config = Config(model_dir=str(tmp_path / "run"))
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    older = json.loads(config.to_json())
    del older["precision"]  # config.json of a run from before --precision
    (tmp_path / "run" / "config.json").write_text(json.dumps(older))
    run_dir.prepare(config, adopt=True)  # a run from before the marker, too
    with pytest.raises(ConfigError, match=r"different config \(precision\)"):
        run_dir.prepare(config.replace(precision="bfloat16"))


@pytest.mark.parametrize("flag", ["--checkpoint_every=300"])
def test_checkpoint_every_must_be_a_multiple_of_log_every(tmp_path, flag):
    done = subprocess.run([*COMMAND, f"--model_dir={tmp_path}", flag], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--checkpoint_every=300 must be" in done.stderr
