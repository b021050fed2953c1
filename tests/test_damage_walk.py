"""The damage walk (issue 21): every file a finished run directory holds, damaged in each way a
disk, a copy or a user can damage it (garbage bytes, cut to half, deleted, replaced by the same
file of another run), under every command that reads it. A command either succeeds where the
file is not needed (`SUCCEEDS`: decided per file here, and documented), or fails with exactly
one line on stderr and no traceback; and no other file of the run changes (a success may write
only what the command writes, `WRITES`).

The files are found by walking the run, not listed: `FILES` decides, for each kind of file, which
commands read it, and the walk fails on a file no entry decides (a new file must be decided
here) and on an entry that matches nothing (a file the run no longer writes).
"""

import fnmatch
import hashlib
import os
import shutil

import numpy as np
import pytest
from absl import flags
from command_testing import main_in_process
from PIL import Image

from mpl_tf import evaluate, predict
from mpl_tf import export as export_command
from mpl_tf import main as main_lib

# A digits run (images, so predict has a serve_image_bytes signature) with finetuning: small and
# short, about 20 s.
COMMON = ["--recipe=digits", "--method=supervised", "--model=mlp", "--mlp_hidden=16",
          "--ema_decay=0", "--train_steps=100", "--log_every=50", "--finetune_steps=10",
          "--finetune_batch_size=16"]
DAMAGES = ("garbage", "truncated", "deleted", "other")

# Each kind of file (a pattern of its path in the run) -> the commands that read it (reading a
# finished run; "train" is rerunning the training command, which refuses a finished run before
# it reads anything but the marker and results.json).
FILES = {
    "mpl_tf_run.json": ("train", "finetune", "evaluate", "evaluate_saved", "export", "predict"),
    "config.json": ("finetune", "evaluate", "evaluate_saved", "export"),
    "results.json": ("train", "finetune", "evaluate", "export"),
    "dataset_info.json": ("evaluate", "export"),
    "labeled_indices.json": ("evaluate_val", "export"),
    "versions.json": ("export",),
    "attempts.json": ("finetune",),
    "model/serving.weights.h5": ("evaluate", "export"),
    "model/trained.weights.h5": ("finetune",),
    "checkpoints/finetune/settings.json": ("finetune_longer",),
    "export/saved_model/*": ("evaluate_saved", "predict"),
    # Read by no command of a finished run: the checkpoints only by a resumed one (a finished
    # run is not resumed), the CSV logs by a resumed training, the TensorBoard logs by
    # TensorBoard, the Hub modules by their users (and publish).
    "checkpoints/train/*": (),
    "checkpoints/finetune/*": (),
    "train_log.csv": (),
    "finetune_log.csv": (),
    "logs/*": (),
    "export/hub/*": (),
}
# Where a damaged file is not needed, the command succeeds: (file pattern, damage, command).
SUCCEEDS = {
    # Without its marker a finished run reads as one made before markers: read-only commands
    # (and export) check its files for form only; training and finetuning refuse it (--adopt).
    *(("mpl_tf_run.json", "deleted", command)
      for command in ("evaluate", "evaluate_saved", "export", "predict")),
    # The wall-time record: finetuning starts a new one from results.json's total.
    ("attempts.json", "deleted", "finetune"),
}
# What a successful command may write in the run directory.
WRITES = {
    "finetune": ("mpl_tf_run.json", "attempts.json", "results.json", "model/", "export/",
                 "finetune_log.csv", "checkpoints/finetune/", "logs/finetune/"),
    "export": ("mpl_tf_run.json", "export/"),
}
WRITES["finetune_longer"] = WRITES["finetune"]
# The outcome on the undamaged run ("fail": the training command refuses a finished run).
PRISTINE = {"train": "fail"}


def kind(relative):
    """The FILES entry of a path: exact names first, then the first pattern that matches."""
    if relative in FILES:
        return relative
    found = [pattern for pattern in FILES if "*" in pattern and fnmatch.fnmatch(relative, pattern)]
    assert found, f"{relative}: no entry of FILES decides which commands read it"
    return found[0]


def tree(directory):
    """{relative path: sha256} of every file under `directory`, the lock aside."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            if relative != ".lock":
                with open(path, "rb") as f:
                    found[relative] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The finished run, another run of the same command with another seed, and images."""
    base = tmp_path_factory.mktemp("walk")
    for name, extra in (("run", []), ("other", ["--seed=1"])):
        assert main_in_process(*COMMON, *extra, f"--model_dir={base / name}") == 0
    images = base / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            images / f"{i}.png")
    return base / "run", base / "other", images


def test_the_walk_finds_every_kind_of_file(runs):
    run, other, _ = runs
    files = tree(run)
    named = {name for name in files if not name.startswith("logs/")}  # events: named by time
    assert named == {name for name in tree(other) if not name.startswith("logs/")}
    kinds = {kind(relative) for relative in files}
    assert kinds == set(FILES), f"never found: {set(FILES) - kinds}"
    assert len(files) > 30


def _command(name, run, output):
    """(main function, argv) of command `name` on the run directory `run`."""
    saved_model = f"--saved_model={run}/export/saved_model"
    return {
        "train": (main_lib.main, ["main", *COMMON, f"--model_dir={run}"]),
        "finetune": (main_lib.main, ["main", f"--model_dir={run}", "--mode=finetune",
                                     "--overwrite", "--finetune_steps=10"]),
        "finetune_longer": (main_lib.main, ["main", f"--model_dir={run}", "--mode=finetune",
                                            "--overwrite", "--finetune_steps=20"]),
        "evaluate": (evaluate.main, ["evaluate", f"--model_dir={run}"]),
        "evaluate_val": (evaluate.main, ["evaluate", f"--model_dir={run}", "--split=val"]),
        "evaluate_saved": (evaluate.main, ["evaluate", saved_model]),
        "export": (export_command.main, ["export", f"--model_dir={run}", "--overwrite"]),
        "predict": (predict.main, ["predict", saved_model, f"--images={output.parent / 'images'}",
                                   f"--output={output}"]),
    }[name]


def _damage(path, damage, other_path):
    if damage == "garbage":
        size = max(os.path.getsize(path), 16)
        with open(path, "wb") as f:
            f.write(bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)))
    elif damage == "truncated":
        with open(path, "rb") as f:
            content = f.read()
        with open(path, "wb") as f:
            f.write(content[:len(content) // 2])
    elif damage == "deleted":
        os.remove(path)
    else:
        shutil.copyfile(other_path, path)


COMMANDS = sorted({command for readers in FILES.values() for command in readers})


@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_file_fails_in_one_line_or_is_not_needed(runs, command, tmp_path, capfd):
    run, other, images = runs
    os.symlink(images, tmp_path / "images")
    pristine = tree(run)
    cases = [(None, "none")] + [(relative, damage) for relative in sorted(pristine)
                                if command in FILES[kind(relative)] for damage in DAMAGES]
    problems = []
    for number, (relative, damage) in enumerate(cases):
        copy = tmp_path / f"case{number}" / "run"
        shutil.copytree(run, copy, symlinks=True)
        identical = False
        if relative is not None:
            identical = damage == "other" and pristine[relative] == tree(other)[relative]
            _damage(copy / relative, damage, other / relative)
        before = tree(copy)
        function, argv = _command(command, copy, tmp_path / f"case{number}.csv")
        capfd.readouterr()
        flags.FLAGS.unparse_flags()
        try:
            status = function(argv)
        except SystemExit as e:  # an absl usage error would exit: a failure of this test
            status = f"SystemExit({e.code})"
        out, err = capfd.readouterr()
        pattern = relative and kind(relative)
        if relative is None or identical:
            wanted = PRISTINE.get(command, "ok")
        else:
            wanted = "ok" if (pattern, damage, command) in SUCCEEDS else "fail"
        after = tree(copy)
        changed = sorted(name for name in set(before) | set(after)
                         if before.get(name) != after.get(name))
        lines = err.strip().splitlines()
        what = f"{relative or 'nothing'} {damage if relative else ''}"
        if os.environ.get("DAMAGE_WALK_LOG"):  # every outcome, to read them all
            with open(os.environ["DAMAGE_WALK_LOG"], "a") as log:
                print(f"{command} | {what} | {status} | {lines[-1] if lines else ''}", file=log)
        if wanted == "ok":
            allowed = WRITES.get(command, ())
            changed = [name for name in changed if not name.startswith(allowed)]
            if status != 0 or changed:
                problems.append(f"{what}: expected success, got status {status}, changed "
                                f"{changed}, stderr {err[-400:]!r}")
        elif status == 0 or len(lines) != 1 or "Traceback" in err or changed:
            problems.append(f"{what}: expected one line and nothing changed, got status "
                            f"{status}, changed {changed}, stderr {err[-600:]!r}")
        shutil.rmtree(copy.parent)
    assert not problems, f"{command}:\n" + "\n".join(problems)
