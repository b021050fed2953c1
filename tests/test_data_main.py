"""The command line on real image data: short MPL runs on digits and on a generated image folder
write results.json, and a bad data flag fails in one line before training."""

import json
import os

import pytest

from command_testing import main_subprocess as run_main
from test_data_sources import write_images

# A ReLU MLP (the default one, Two Moons' 8-8 sigmoid, stays at chance here in 200 steps).
RUN = ("--num_labeled=50", "--train_steps=200", "--log_every=100", "--labeled_batch_size=16",
       "--unlabeled_batch_size=32", "--label_type=sampled", "--feedback=taylor",
       "--mlp_hidden=64", "--mlp_activation=relu")


def image_folder(root):
    for i, name in enumerate(("circle", "square", "stripes")):
        write_images(os.path.join(root, "labeled", name), 40, 40 + 80 * i, size=(16, 16))
    write_images(os.path.join(root, "unlabeled"), 20, 120, size=(16, 16))
    return root


@pytest.mark.parametrize("dataset,precision", [("digits", "float32"), ("folder", "float32"),
                                               ("digits", "bfloat16")])
def test_short_mpl_run_writes_results(tmp_path, dataset, precision):
    if dataset == "folder":
        dataset = f"folder:{image_folder(str(tmp_path / 'shapes'))}"
    model_dir = tmp_path / "run"
    done = run_main(f"--dataset={dataset}", f"--model_dir={model_dir}",
                    f"--precision={precision}", *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((model_dir / "results.json").read_text())
    assert results["dataset"] == dataset and results["train_steps"] == 200
    chance = 1 / json.loads((model_dir / "dataset_info.json").read_text())["num_classes"]
    assert results["test_accuracy"] > 1.5 * chance and results["val_accuracy"] > 1.5 * chance
    assert results["diverged"] is False, results["warnings"]
    assert len(json.loads((model_dir / "labeled_indices.json").read_text())["indices"]) == 50
    info = json.loads((model_dir / "dataset_info.json").read_text())
    assert info["view"] in ("pad_crop", "flip_pad_crop") and len(info["pixel_mean"]) in (1, 3)
    assert json.loads((model_dir / "config.json").read_text())["precision"] == precision
    assert (model_dir / "export" / "saved_model" / "saved_model.pb").exists()  # float32 export


@pytest.mark.parametrize("flag,message", [
    ("--dataset=cifar11", "--dataset=cifar11 is not valid; valid values: two_moons, digits"),
    ("--label_fraction=1.5", "--label_fraction=1.5 must be in (0, 1]"),
    ("--num_labeled=5000", "--num_labeled=5000 is larger than the training set"),
])
def test_bad_data_flags_fail_in_one_line(tmp_path, flag, message):
    done = run_main("--dataset=digits", f"--model_dir={tmp_path / 'run'}", flag)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


def test_results_record_the_labeled_count_label_fraction_chose(tmp_path):
    """results.json's num_labeled is the number of labeled examples used, not --num_labeled's
    default, when --label_fraction chose it."""
    model_dir = tmp_path / "run"
    done = run_main("--dataset=digits", "--model=mlp", "--label_fraction=0.1",
                    f"--model_dir={model_dir}", "--train_steps=20", "--log_every=20",
                    "--labeled_batch_size=16", "--unlabeled_batch_size=32")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((model_dir / "results.json").read_text())
    labeled = json.loads((model_dir / "labeled_indices.json").read_text())["indices"]
    assert results["num_labeled"] == len(labeled) > 100 and results["label_fraction"] == 0.1
