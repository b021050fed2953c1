"""A run that diverged is told from one that has not learned yet (issue 21): a 300-step run at
chance with a finite loss that is not blowing up was called "diverged"; it now gets a milder
"still at chance after N steps" warning, and divergence is a non-finite loss or one that blew
up far above where it started."""

import csv
import json
import math
import os

import pytest
from command_testing import main_in_process as run_main

from mpl_tf.durable import faults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEN = math.log(10)


@pytest.mark.parametrize("losses,accuracy", [
    ([TEN + 0.3, TEN + 0.2, TEN + 0.2], 0.09),  # confidently wrong, but not getting worse
    ([TEN, TEN - 0.01, TEN - 0.02], 0.10),  # a uniform guess, learning nothing yet
    ([TEN - 0.2, TEN + 0.5], 0.11),  # rising a little: not (yet) blown up
])
def test_a_run_at_chance_with_a_finite_steady_loss_has_not_learned_yet(losses, accuracy):
    judged = faults.divergence(losses, accuracy, num_classes=10, num_examples=100, steps=300)
    assert judged["diverged"] is False
    (warning,) = judged["warnings"]
    assert warning.startswith(f"still at chance after 300 steps: the validation accuracy "
                              f"{accuracy:.4f} is at chance (0.1000 for 10 classes)")
    assert ("rising" if losses[-1] > losses[0] else "not rising") in warning


@pytest.mark.parametrize("losses,accuracy,says", [
    ([TEN, float("nan")], 0.10, "was not finite (nan in log window 2 of 2)"),
    ([TEN, float("inf"), 1.0], 0.80, "was not finite (inf in log window 2 of 3)"),
    ([249.0, 250.0], 0.10, "over 10x where it started (2.303)"),  # blew up in its first window
    ([0.1, 2.5], 0.70, "grew from 0.1 (first window) to 2.5 (last window)"),  # learned, then not
])
def test_a_non_finite_or_blown_up_loss_diverged(losses, accuracy, says):
    judged = faults.divergence(losses, accuracy, num_classes=10, num_examples=100, steps=300)
    assert judged["diverged"] is True
    assert any(says in warning for warning in judged["warnings"]), judged["warnings"]
    assert not any(w.startswith("still at chance") for w in judged["warnings"])


def test_a_run_that_learned_has_no_warning():
    assert faults.divergence([TEN, 0.4, 0.3], 0.9, 10, 100, steps=300) == {
        "diverged": False, "warnings": []}


def test_a_300_step_run_that_has_not_learned_is_not_called_diverged(tmp_path, capfd):
    """Digits, an MLP started with large weights (confidently wrong: its loss is above log 10)
    and a learning rate too small to move it in 300 steps."""
    os.chdir(REPO)
    model_dir = tmp_path / "run"
    assert run_main("--dataset=digits", "--method=supervised", "--num_labeled=50",
                    "--labeled_batch_size=16", "--mlp_init_scale=3", "--teacher_lr=1e-6",
                    "--train_steps=300", "--log_every=100", f"--model_dir={model_dir}") == 0
    results = json.loads((model_dir / "results.json").read_text())
    with open(model_dir / "train_log.csv", newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] > TEN  # above a uniform guess: the old rule called this diverged
    assert results["diverged"] is False
    assert any(w.startswith("still at chance after 300 steps") for w in results["warnings"])
    err = capfd.readouterr().err
    assert "warning: still at chance after 300 steps" in err and "diverged" not in err
