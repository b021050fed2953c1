"""The feedback diagnostics every MPL run logs: each checked against a value computed apart
from them, on one device and over two replicas."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mpl_tf.method.mpl import feedback_diagnostics
from command_testing import main_subprocess as run_main
from test_data_main import image_folder
from mpl_testing import (batch, build, distributed_step_config, one_device_and_two_replicas,
                         tiny_config, weights)


def per_step_logs(model, data_batches, names):
    """Each step's own value of the windowed means `names` (undone from the running means)."""
    rows, previous = [], {}
    for k, data in enumerate(data_batches):
        logs = {name: float(v) for name, v in model.train_step(data).items()}
        rows.append({name: logs[name] * (k + 1) - previous.get(name, 0.0) * k for name in names})
        previous = logs
    return rows, logs


def test_spreads_and_correlation_are_those_of_the_window_steps():
    config = tiny_config(train_steps=12, log_every=6, feedback_baseline_decay=0.5,
                         label_type="sampled")
    model = build(config)
    data = [batch(config, seed=s) for s in range(6)]
    rows, logs = per_step_logs(model, data, ["feedback_h", "feedback_coefficient",
                                             "pseudo_label_accuracy"])
    h = np.array([r["feedback_h"] for r in rows])
    coefficient = np.array([r["feedback_coefficient"] for r in rows])
    # pseudo_label_accuracy is weighted by the known labels: every step has 6 of them here.
    accuracy = np.array([r["pseudo_label_accuracy"] for r in rows])
    np.testing.assert_allclose(logs["feedback_h_std"], np.std(h), rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(logs["feedback_coefficient_std"], np.std(coefficient), rtol=1e-3,
                               atol=1e-9)
    np.testing.assert_allclose(logs["feedback_h_pseudo_label_accuracy_correlation"],
                               np.corrcoef(h, accuracy)[0, 1], rtol=1e-2, atol=1e-3)
    assert 0.0 < logs["feedback_h_positive"] < 1.0


@pytest.mark.parametrize("label_type,estimator", [("argmax", "taylor"), ("soft", "exact")])
def test_share_of_teacher_gradient_is_the_feedback_terms_norm_over_the_whole(label_type,
                                                                             estimator):
    """On a log step (every step here), with plain SGD the teacher's gradient is read off its
    update; the share must be |g(feedback) - g(none)| / |g(feedback)|."""
    config = tiny_config(log_every=1, train_steps=1, uda_weight=1.0, uda_threshold=0.3,
                         label_type=label_type, feedback=estimator)
    data = batch(config)
    start = build(config)
    with_feedback, without = build(config), build(config.replace(feedback="none"))
    share = float(with_feedback.train_step(data)["feedback_share_of_teacher_gradient"])
    none_share = float(without.train_step(data)["feedback_share_of_teacher_gradient"])
    grad = lambda model: np.concatenate([(a - b).ravel() for a, b in zip(  # noqa: E731
        weights(start.teacher), weights(model.teacher))]) / config.teacher_lr
    expected = np.linalg.norm(grad(with_feedback) - grad(without)) / np.linalg.norm(
        grad(with_feedback))
    assert expected > 1e-3
    np.testing.assert_allclose(share, expected, rtol=1e-6)
    assert none_share == 0.0


def test_share_is_measured_on_the_last_step_of_each_window_only():
    config = tiny_config(log_every=5, train_steps=10)
    model = build(config)
    tracker = model.trackers["feedback_share_of_teacher_gradient"]
    defined = []
    for s in range(5):
        model.train_step(batch(config, seed=s))
        defined.append(bool(tracker.defined()))
    assert defined == [False] * 4 + [True] and float(tracker.result()) > 0


def test_diagnostics_agree_over_two_replicas():
    config = distributed_step_config("argmax", "dot").replace(log_every=3, train_steps=3)
    _, one, two = one_device_and_two_replicas(config, batch(config, dtype="float32"))
    for name in ("feedback_h_std", "feedback_coefficient_std",
                 "feedback_share_of_teacher_gradient"):
        a, b = float(one.trackers[name].result()), float(two.trackers[name].result())
        assert a > 0, name
        assert b == pytest.approx(a, rel=1e-3, abs=1e-7), name


def test_the_results_summary_leaves_out_what_no_window_defined():
    logs = {"feedback_h": 0.1, "feedback_h_std": 0.2, "feedback_h_positive": 0.5,
            "feedback_coefficient_std": 0.3, "teacher_uda": 1.0,
            "feedback_share_of_teacher_gradient": 0.01}
    summary = feedback_diagnostics(logs)
    assert summary["share_of_teacher_gradient"] == 0.01 and summary["h_std"] == 0.2
    assert "h_pseudo_label_accuracy_correlation" not in summary


def _tensorboard_tags(log_dir):
    tags = set()
    for root, _, files in os.walk(log_dir):
        for name in files:
            if "tfevents" in name:
                for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                    tags.update(value.tag for value in event.summary.value)
    return tags


DIAGNOSTICS = ("feedback_h", "feedback_h_std", "feedback_h_positive", "feedback_coefficient_std",
               "feedback_h_pseudo_label_accuracy_correlation",
               "feedback_share_of_teacher_gradient")


@pytest.mark.parametrize("dataset", ["digits", "folder"])
def test_a_run_logs_the_diagnostics_and_summarises_them(tmp_path, dataset):
    """TensorBoard, the CSV and results.json carry them; a folder's unlabeled images have no
    hidden labels, so with every labeled image in the labeled split (or validation) and left
    out of the unlabeled pool, the correlation is left out there, and the run does not fail."""
    split = ["--num_labeled=30"]
    if dataset == "folder":
        dataset = f"folder:{image_folder(str(tmp_path / 'shapes'))}"
        split = ["--num_labeled=66", "--num_val=30", "--unlabeled_excludes_labeled"]
    model_dir = tmp_path / "run"
    done = run_main(f"--dataset={dataset}", f"--model_dir={model_dir}", "--dropout_rate=0.1",
                    *split, "--train_steps=40", "--log_every=20",
                    "--labeled_batch_size=8", "--unlabeled_batch_size=16",
                    "--feedback_baseline_decay=0.9")
    assert done.returncode == 0, done.stderr[-3000:]
    expected = set(DIAGNOSTICS) - ({"feedback_h_pseudo_label_accuracy_correlation"}
                                   if dataset.startswith("folder") else set())
    tags = {tag[len("epoch_"):] for tag in _tensorboard_tags(model_dir / "logs" / "train")}
    assert expected <= tags and not set(DIAGNOSTICS) - expected & tags
    with open(model_dir / "train_log.csv") as f:
        columns = set(next(csv.reader(f)))
    assert expected <= columns and not set(DIAGNOSTICS) - expected & columns
    summary = json.loads((model_dir / "results.json").read_text())["feedback_diagnostics"]
    assert summary["share_of_teacher_gradient"] > 0 and summary["h_std"] > 0
    assert 0 <= summary["h_positive_fraction"] <= 1
    assert ("h_pseudo_label_accuracy_correlation" in summary) == (dataset == "digits")
