"""The command line as users run it: a real Two Moons run, and every bad input failing in one
line before training, with nothing written."""

import json
import os

import pytest
from command_testing import REPO, main_in_process
from command_testing import main_subprocess as run_main


def test_two_moons_run_writes_the_run_dir_contract(tmp_path):
    model_dir = tmp_path / "run"
    done = run_main("--flagfile=flags/two_moons.cfg", f"--model_dir={model_dir}",
                    "--train_steps=1000", "--log_every=500")
    assert done.returncode == 0, done.stderr[-3000:]
    # Nothing in the traced step that AutoGraph cannot convert (it warns on every run).
    assert "AutoGraph could not transform" not in done.stderr, done.stderr[-3000:]
    results = json.loads((model_dir / "results.json").read_text())
    for key in ("dataset", "method", "seed", "train_steps", "val_accuracy", "test_accuracy",
                "wall_seconds"):
        assert key in results
    assert results["method"] == "mpl" and results["train_steps"] == 1000
    for key in ("val_accuracy", "test_accuracy", "control_supervised_test_accuracy"):
        assert 0.0 <= results[key] <= 1.0
    assert results["test_accuracy"] > 0.6
    config = json.loads((model_dir / "config.json").read_text())
    assert config["feedback"] == "taylor" and config["num_labeled"] == 12
    versions = json.loads((model_dir / "versions.json").read_text())
    assert versions["packages"]["tensorflow"] == "2.21.0"
    labeled = json.loads((model_dir / "labeled_indices.json").read_text())
    assert len(labeled["indices"]) == 12
    assert (model_dir / "decision_boundary.png").stat().st_size > 10_000
    assert (model_dir / "model" / "serving.weights.h5").stat().st_size > 0
    info = json.loads((model_dir / "dataset_info.json").read_text())
    assert info["num_classes"] == 2 and info["input_shape"] == [2]
    assert (model_dir / "train_log.csv").read_text().count("\n") == 3  # header + 2 epochs
    assert any(name.startswith("events") for _, _, files in os.walk(model_dir / "logs")
               for name in files)
    again = run_main("--flagfile=flags/two_moons.cfg", f"--model_dir={model_dir}")
    assert again.returncode == 2 and "already holds a finished run" in again.stderr


# In this process (TensorFlow is up already), but for two cases in a fresh one: there, a bad
# value must be the only line even though TensorFlow starts (--num_labeled is checked on the
# data, after it has).
FRESH = ("--dataset=mnist", "--num_labeled=1")


@pytest.mark.parametrize("flag,message", [
    ("--method=teacher", "--method=teacher"),
    ("--feedback=cosine", "--feedback=cosine"),
    ("--label_type=fuzzy", "--label_type=fuzzy"),
    ("--teacher_lr=-1", "--teacher_lr=-1.0 must be > 0"),
    ("--student_lr=-1", "--student_lr=-1.0 must be > 0"),
    ("--train_steps=0", "--train_steps=0 must be a positive integer"),
    ("--train_steps=-5", "--train_steps=-5 must be a positive integer"),
    ("--flagfile=flags/no_such_recipe.cfg", "no_such_recipe.cfg"),
    ("--dataset=mnist", "--dataset=mnist is not valid; valid values: two_moons"),
    ("--num_labeled=1", "smaller than the number of classes"),
    ("--label_type=soft", "zero gradient"),
    ("--precision=float64", "--precision=float64"),
    ("--precision=mixed_float16 --strategy=tpu --tpu=local", "does not run on TPUs"),
    ("--seed=-1", "--seed=-1 must be >= 0"),
    ("--mlp_activation=banana", "--mlp_activation=banana is not a Keras activation"),
    ("--teacher_lr=nan", "--teacher_lr=nan must be a finite number"),
    ("--label_fraction=0.1 --num_labeled=20", "both set the number of labeled examples"),
])
def test_bad_input_fails_in_one_line_before_training(tmp_path, capfd, monkeypatch, flag,
                                                     message):
    model_dir = tmp_path / "run"
    args = ("--flagfile=flags/two_moons.cfg", f"--model_dir={model_dir}", *flag.split())
    if flag in FRESH:
        done = run_main(*args)
        status, stderr = done.returncode, done.stderr
    else:
        monkeypatch.chdir(REPO)
        capfd.readouterr()
        status, stderr = main_in_process(*args), capfd.readouterr().err
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert not model_dir.exists()


def test_enum_errors_name_the_valid_values(tmp_path):
    done = run_main(f"--model_dir={tmp_path}", "--method=teacher")
    assert "mpl|uda|supervised" in done.stderr


def test_missing_model_dir_is_an_error():
    done = run_main("--flagfile=flags/two_moons.cfg")
    assert done.returncode == 2 and "--model_dir is required" in done.stderr


def test_finetuning_after_training_and_on_demand(tmp_path):
    model_dir = tmp_path / "run"
    done = run_main("--flagfile=flags/two_moons.cfg", f"--model_dir={model_dir}",
                    "--method=supervised", "--train_steps=500", "--log_every=500",
                    "--ema_decay=0.99", "--finetune_steps=100", "--finetune_lr=0.01",
                    "--finetune_batch_size=12")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((model_dir / "results.json").read_text())
    for key in ("val_accuracy_before_finetune", "test_accuracy_before_finetune",
                "raw_test_accuracy", "val_accuracy", "test_accuracy"):
        assert 0.0 <= results[key] <= 1.0
    assert results["finetune_steps"] == 100
    assert (model_dir / "finetune_log.csv").exists()
    before = (model_dir / "model" / "serving.weights.h5").read_bytes()
    again = run_main(f"--model_dir={model_dir}", "--mode=finetune", "--finetune_steps=50",
                     "--finetune_lr=0.5", "--overwrite")  # replaces the earlier finetuning
    assert again.returncode == 0, again.stderr[-3000:]
    updated = json.loads((model_dir / "results.json").read_text())
    assert updated["finetune_steps"] == 50 and updated["finetune_lr"] == 0.5
    # finetuned again from the trained (not the already finetuned) network
    assert updated["test_accuracy_before_finetune"] == results["test_accuracy_before_finetune"]
    assert (model_dir / "model" / "trained.weights.h5").exists()
    assert (model_dir / "model" / "serving.weights.h5").read_bytes() != before


def test_finetune_without_a_trained_run_fails_in_one_line(tmp_path):
    done = run_main(f"--model_dir={tmp_path / 'empty'}", "--mode=finetune",
                    "--finetune_steps=10")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --mode=finetune needs a finished training run in "
        f"--model_dir={tmp_path / 'empty'} (no config.json)"]
