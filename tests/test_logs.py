"""What a run logs per --log_every window (issue 21): TensorBoard scalars at the global step,
in logs/train itself, with the validation accuracy curve; train_log.csv without columns that
are always empty."""

import csv
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from command_testing import main_in_process as run_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scalars(directory):
    """{name: {step: value}} of every scalar (tag epoch_NAME) in the event files directly in
    `directory`."""
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                          else value.simple_value)
                assert value.tag.startswith("epoch_"), value.tag
                found.setdefault(value.tag[len("epoch_"):], {})[event.step] = number
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two Moons (a 500-point validation split), supervised, 3 windows of 100 steps, then 50
    steps of finetuning."""
    model_dir = tmp_path_factory.mktemp("logs") / "run"
    os.chdir(REPO)
    assert run_main("--flagfile=flags/two_moons.cfg", "--method=supervised",
                    "--train_steps=300", "--log_every=100", "--finetune_steps=50",
                    "--finetune_batch_size=12", "--finetune_lr=0.01",
                    f"--model_dir={model_dir}") == 0
    return model_dir


def test_tensorboard_scalars_are_at_the_global_step_in_logs_train_itself(run):
    assert sorted(os.listdir(run / "logs")) == ["finetune", "train"]
    for phase in ("train", "finetune"):
        entries = os.listdir(run / "logs" / phase)
        assert entries and all(e.startswith("events.out.tfevents.") for e in entries), entries
    train = scalars(run / "logs" / "train")
    assert sorted(train["loss"]) == [100, 200, 300]  # not windows 0, 1, 2
    assert sorted(scalars(run / "logs" / "finetune")["loss"]) == [50]


def test_the_validation_accuracy_is_a_curve(run):
    curve = scalars(run / "logs" / "train")["val_accuracy"]
    assert sorted(curve) == [100, 200, 300]
    assert all(0.0 <= v <= 1.0 for v in curve.values())
    assert sorted(scalars(run / "logs" / "finetune")["val_accuracy"]) == [50]


def test_the_csv_log_has_no_always_empty_column(run):
    for name in ("train_log.csv", "finetune_log.csv"):
        with open(run / name, newline="") as f:
            rows = list(csv.DictReader(f))
        empty = [column for column in rows[0]
                 if all(row[column] in ("", "NA") for row in rows)]
        assert empty == [], (name, empty)
        assert [k for k in rows[0] if k.startswith("val_")] == ["val_accuracy"]
    with open(run / "train_log.csv", newline="") as f:
        accuracies = [float(row["val_accuracy"]) for row in csv.DictReader(f)]
    tensorboard = scalars(run / "logs" / "train")["val_accuracy"]
    np.testing.assert_allclose(accuracies, [tensorboard[s] for s in (100, 200, 300)],
                               rtol=1e-6)
