"""The paper's recipes parse, validate and (CIFAR-10-4K) run end to end on TFDS mock data:
WRN-28-2, UDA teacher, EMA student, schedules, finetuning, export."""

import json
import os

import pytest
import tensorflow_datasets as tfds
from absl import flags
from command_testing import main_in_process as run_main

from mpl_tf import cli
from mpl_tf.durable import run_dir

from mpl_tf.run import orchestrate
from mpl_tf.config import Config
from mpl_tf.data import sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recipe(name, *overrides):
    """Config of flags/NAME.cfg with command-line overrides, parsed as main parses it."""
    cwd = os.getcwd()
    os.chdir(REPO)  # nested flagfiles are named relative to the repository
    try:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["recipe", f"--flagfile=flags/{name}.cfg", *overrides])
        return cli.validated(Config.from_flags())
    finally:
        flags.FLAGS.unparse_flags()
        os.chdir(cwd)


@pytest.mark.parametrize("name,model,steps", [
    ("cifar10_4000", "wrn-28-2", 300000), ("cifar10_4000_50k", "wrn-28-2", 50000),
    ("svhn_1000", "wrn-28-2", 300000), ("imagenet_10pct", "resnet-50", 700000),
    ("digits", "cnn", 2000), ("fashion_mnist", "mnist-cnn", 4000), ("folder", "cnn", 2000),
    ("two_moons", "mlp", 30000),
    ("two_moons_6", "mlp", 30000)])
def test_every_recipe_parses_and_validates(name, model, steps):
    config = recipe(name)
    assert config.model == model and config.train_steps == steps


def test_cifar10_4000_recipe_matches_the_released_settings():
    config = recipe("cifar10_4000")
    assert (config.labeled_batch_size, config.global_unlabeled_batch_size) == (128, 896)
    assert config.teacher_lr == config.student_lr == 0.05  # 0.1 per 256 examples, at 128
    assert (config.student_wait_steps, config.student_warmup_steps) == (3000, 5000)
    assert (config.uda_weight, config.uda_temperature, config.uda_threshold) == (8, 0.7, 0.6)
    assert (config.label_smoothing, config.ema_decay, config.weight_decay) == (0.15, 0.995, 5e-4)
    assert (config.finetune_steps, config.finetune_lr, config.finetune_batch_size) == (
        1000, 1e-5, 512)


def test_cifar10_4000_smoke_run_on_mock_data(tmp_path):
    config = recipe("cifar10_4000", f"--model_dir={tmp_path / 'run'}",
                    f"--data_dir={tmp_path / 'tfds'}", "--train_steps=2", "--log_every=1",
                    "--num_labeled=20", "--num_val=20", "--labeled_batch_size=4",
                    "--uda_ratio=2", "--teacher_warmup_steps=1", "--student_warmup_steps=1",
                    "--student_wait_steps=1", "--uda_ramp_steps=2", "--finetune_steps=1",
                    "--finetune_batch_size=4", "--eval_batch_size=50")
    with tfds.testing.mock_data(num_examples=100):
        data = sources.load(config)
        run_dir.prepare(config)
        results = orchestrate.run(config, data)
    assert results["train_steps"] == 2 and results["finetune_steps"] == 1
    for key in ("test_accuracy", "test_accuracy_before_finetune", "teacher_test_accuracy"):
        assert 0.0 <= results[key] <= 1.0
    logs = results["train_logs_mean"]
    assert logs["student_lr"] > 0 and logs["uda_mask_ratio"] >= 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == "wrn-28-2" and saved["ema_decay"] == 0.995
    assert (tmp_path / "run" / "export" / "saved_model" / "saved_model.pb").exists()


def test_every_config_field_is_a_flag_with_its_default_and_help():
    """The flags are generated from the Config fields: same names, defaults, help, choices."""
    import dataclasses

    for field in dataclasses.fields(Config):
        flag, spec = flags.FLAGS[field.name], field.metadata["spec"]
        default = tuple(flag.default) if field.name == "mlp_hidden" else flag.default
        assert default == (field.default if field.default != "" else None), field.name
        choices = spec.choices or cli.REGISTRIES.get(spec.registry)
        assert flag.help.endswith(spec.help) and getattr(flag.parser, "enum_values", None) == (
            list(choices) if choices else None), field.name


# --- folders: a recipe of their own, and a warning without it (issue 21) ----------------------

FOLDER_WARNING = ("warning: network meant for 2-D points (mlp) meets images of shape 16x16x3: "
                  "use --recipe=folder (a CNN for small images) or --model=cnn")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Three classes of 16x16 noisy gray levels (40 images each) and 20 unlabeled images."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("folder") / "shapes"
    rng = np.random.default_rng(0)
    for part, level, count in (("labeled/dark", 40, 40), ("labeled/mid", 120, 40),
                               ("labeled/light", 200, 40), ("unlabeled", 120, 20)):
        (root / part).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(rng.normal(level, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / part / f"{i:03d}.png")
    return str(root)


def test_a_folder_without_a_recipe_warns_once_that_the_mlp_meets_images(shapes, tmp_path,
                                                                        capfd):
    """The default flags train Two Moons' MLP on the images: said before training, once, and
    recorded in results.json."""
    os.chdir(REPO)
    model_dir = tmp_path / "run"
    assert run_main(f"--dataset=folder:{shapes}", "--num_labeled=30", "--train_steps=20",
                    "--log_every=10", f"--model_dir={model_dir}") == 0
    err = capfd.readouterr().err
    assert err.count("network meant for 2-D points") == 1, err
    assert err.splitlines()[0].startswith(FOLDER_WARNING), err
    results = json.loads((model_dir / "results.json").read_text())
    assert results["warnings"][0] == FOLDER_WARNING[len("warning: "):] + (
        " (convolutional networks: cnn, mnist-cnn, wrn-28-2, wrn-28-8, resnet-50)")


def test_the_folder_recipe_trains_a_cnn_on_a_small_folder(shapes, tmp_path, capfd):
    os.chdir(REPO)
    model_dir = tmp_path / "run"
    assert run_main("--recipe=folder", f"--dataset=folder:{shapes}", "--train_steps=20",
                    "--log_every=10", "--finetune_steps=10", f"--model_dir={model_dir}") == 0
    assert "network meant for 2-D points" not in capfd.readouterr().err
    config = json.loads((model_dir / "config.json").read_text())
    info = json.loads((model_dir / "dataset_info.json").read_text())
    assert config["model"] == "cnn" and info["input_shape"] == [32, 32, 3]
    assert info["view"] == "flip_pad_crop"
    results = json.loads((model_dir / "results.json").read_text())
    assert results["num_labeled"] == 40 and results["finetune_steps"] == 10
    assert not any("2-D points" in w for w in results["warnings"])


def test_the_folder_recipe_without_a_folder_says_what_to_pass(tmp_path, capfd):
    os.chdir(REPO)
    assert run_main("--recipe=folder", f"--model_dir={tmp_path / 'run'}") == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert line.startswith("error: --dataset=folder:PATH: PATH is not a directory; expected "
                           "PATH/labeled/<class>/*.png")
