"""Every size flag has an upper bound (issue 21): an absolute cap in its Spec, checked before
anything is imported, and a bound against the data it applies to, checked once the data is
known and before anything is written; each is one line naming the flag, the value, the limit
and why. Without them `--image_size=100000` on a folder hung in its scan, and
`--cutout_size=1000` on the 16-pixel digits blanked every strong view."""

import os

import pytest
from command_testing import main_in_process as run_main
from test_data_sources import write_images

from mpl_tf import config as config_lib
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Short runs with small batches, should a bound ever let a value through (without its bound,
# a 500-pixel CNN run on a folder of 14-pixel images took 20 GB before it was killed).
DIGITS = ["--flagfile=flags/digits.cfg", "--train_steps=10", "--log_every=10",
          "--finetune_steps=0"]
MOONS = ["--flagfile=flags/two_moons.cfg", "--train_steps=100", "--log_every=100"]


@pytest.mark.parametrize("flag,value,limit", [
    ("image_size", 100000, config_lib.MAX_IMAGE_SIZE),
    ("cutout_size", 5000, config_lib.MAX_IMAGE_SIZE),
    ("labeled_batch_size", 10 ** 9, config_lib.MAX_BATCH_SIZE),
    ("unlabeled_batch_size", 10 ** 9, config_lib.MAX_BATCH_SIZE),
    ("eval_batch_size", 10 ** 9, config_lib.MAX_BATCH_SIZE),
    ("finetune_batch_size", 10 ** 9, config_lib.MAX_BATCH_SIZE),
    ("uda_ratio", 10 ** 6, config_lib.MAX_UDA_RATIO),
])
def test_absolute_caps_need_no_data(flag, value, limit):
    with pytest.raises(ConfigError) as error:
        Config(**{flag: value}).validate()
    assert str(error.value).startswith(f"--{flag}={value} must be <= {limit} (")


def test_mlp_widths_are_capped():
    with pytest.raises(ConfigError, match=r"--mlp_hidden=8,100000 must list widths of at most"):
        Config(mlp_hidden=(8, 100000)).validate()


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """Two classes of 14x14 images, 30 each, and 20 unlabeled ones."""
    root = str(tmp_path_factory.mktemp("folder") / "small")
    for name, color in (("dark", 50), ("light", 200)):
        write_images(os.path.join(root, "labeled", name), 30, color, size=(14, 14))
    write_images(os.path.join(root, "unlabeled"), 20, 120, size=(14, 14))
    return root


CASES = {
    "a folder at 100000 pixels": (
        ["--dataset=folder:{folder}", "--model=cnn", "--image_size=100000"],
        "--image_size=100000 must be <= 2048 (larger images do not fit a batch in memory)"),
    "cutout on the 16-pixel digits": (
        [*DIGITS, "--cutout_size=1000"],
        "--cutout_size=1000 is above its limit of 16: the side of --dataset=digits's 16-pixel "
        "training images"),
    "digits upsampled past 8x": (
        [*DIGITS, "--image_size=80", "--cutout_size=4", "--labeled_batch_size=2",
         "--uda_ratio=1"],
        "--image_size=80 is above its limit of 64: 8x the 8-pixel side of the scikit-learn "
        "digits"),
    "a folder upsampled past 8x": (
        ["--dataset=folder:{folder}", "--model=cnn", "--num_labeled=10", "--image_size=200",
         "--labeled_batch_size=2", "--unlabeled_batch_size=2", "--train_steps=10",
         "--log_every=10"],
        "--image_size=200 is above its limit of 112: 8x the 14-pixel side of the largest image "
        "of --dataset=folder:{folder}"),
    "a labeled batch beyond the labeled examples": (
        [*DIGITS, "--num_labeled=20", "--labeled_batch_size=32"],
        "--labeled_batch_size=32 is above its limit of 20: the labeled examples of "
        "--dataset=digits"),
    "an unlabeled batch beyond the pool": (
        [*MOONS, "--unlabeled_batch_size=5000"],
        "--unlabeled_batch_size=5000 is above its limit of "),
    "a uda ratio beyond the pool": (
        [*DIGITS, "--uda_ratio=100"],
        "--uda_ratio=100 (an unlabeled batch of 1600) is above its limit of "),
    # labeled 50 + validation 1208 are digits' 1258 training images: the pool is empty, which
    # was a tf.data traceback (supervised, after writing the run directory) or "a batch above
    # its limit of 0" (mpl)
    "no unlabeled example left (supervised)": (
        [*DIGITS, "--method=supervised", "--num_val=1208", "--unlabeled_excludes_labeled"],
        "--dataset=digits leaves no unlabeled examples: its 50 labeled and 1208 validation "
        "examples are all of its training examples, and --unlabeled_excludes_labeled keeps the "
        "labeled ones out of the pool; lower --num_val or drop --unlabeled_excludes_labeled"),
    "no unlabeled example left (mpl)": (
        [*DIGITS, "--num_val=1208", "--unlabeled_excludes_labeled"],
        "--dataset=digits leaves no unlabeled examples: "),
    "a finetuning batch beyond the labeled examples": (
        [*MOONS, "--finetune_steps=10"],
        "--finetune_batch_size=512 is above its limit of 12: the labeled examples of "
        "--dataset=two_moons that finetuning trains on"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_size_beyond_the_data_fails_in_one_line_and_writes_nothing(case, small_folder,
                                                                     tmp_path, capfd):
    args, message = (text.format(folder=small_folder) if isinstance(text, str) else
                     [a.format(folder=small_folder) for a in text] for text in CASES[case])
    os.chdir(REPO)
    model_dir = tmp_path / "run"
    status = run_main(*args, f"--model_dir={model_dir}")
    lines = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {message}"), lines[0]
    assert not model_dir.exists()


def test_finetuning_a_finished_run_checks_only_the_finetuning_batch(tmp_path, capfd):
    """--mode=finetune takes the run's recorded settings (a finetuning batch of 512 by default)
    and the command line's; the training batches ran already and are not judged again."""
    os.chdir(REPO)
    model_dir = tmp_path / "run"
    assert run_main(*MOONS, "--method=supervised", f"--model_dir={model_dir}") == 0
    capfd.readouterr()
    assert run_main(f"--model_dir={model_dir}", "--mode=finetune", "--finetune_steps=10") == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert line.startswith("error: --finetune_batch_size=512 is above its limit of 12")
    assert "finetune_steps" not in (model_dir / "results.json").read_text()
    assert run_main(f"--model_dir={model_dir}", "--mode=finetune", "--finetune_steps=10",
                    "--finetune_batch_size=12") == 0
