"""Every flag `mpl_tf/config.py` defines, fed a wrong type, an out-of-range and a non-finite
value (where they apply), fails in one line on stderr with exit status 2 and nothing written;
the cases are derived from each field's Spec, so a new flag is walked without editing this file.
The commands run in this process (importing TensorFlow once), not one subprocess per case."""

import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags

from mpl_tf import config as config_lib
from mpl_tf import evaluate, export, predict, publish
from mpl_tf import main as main_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {f.name: f.metadata["spec"] for f in dataclasses.fields(config_lib.Config)}


def bad_values(name, spec, a_file):
    """(flag arguments, what is wrong) for every bad value that applies to the field."""
    if spec.kind == "int":
        yield [f"--{name}=abc"], "type"
        yield [f"--{name}=2.5"], "type"
        yield [f"--{name}=nan"], "non-finite"
        below = spec.low - 1 if spec.off != spec.low - 1 else spec.low - 2  # off: accepted
        yield [f"--{name}={below}"], "below its range"
        yield [f"--{name}={spec.high + 1}"], "above its range"
    elif spec.kind == "float":
        yield [f"--{name}=abc"], "type"
        for value in ("nan", "inf", "-inf"):
            yield [f"--{name}={value}"], "non-finite"
        below = spec.low if spec.low_open and spec.off != spec.low else spec.low - 1
        yield [f"--{name}={below:g}"], "below its range"
        if spec.high is not None:
            yield [f"--{name}={spec.high if spec.high_open else spec.high + 0.5:g}"], "above"
    elif spec.kind == "bool":
        yield [f"--{name}=banana"], "type"
        yield [f"--{name}=2"], "type"
    elif spec.kind == "enum":
        yield [f"--{name}=banana"], "not a choice"
        yield [f"--{name}="], "not a choice"
    elif spec.kind == "ints":
        yield [f"--{name}=a,b"], "type"
        yield [f"--{name}=nan"], "non-finite"
        yield [f"--{name}=0,8"], "below its range"
        yield [f"--{name}={','.join(['4'] * (spec.high + 1))}"], "too many widths"
        yield [f"--{name}="], "empty"
    elif spec.kind == "path":
        yield [f"--{name}={a_file}"], "a file, not a directory"
        yield [f"--{name}={os.path.join(a_file, 'sub')}"], "under a file"
    elif spec.registry:
        yield [f"--{name}=banana"], "not registered"
        yield [f"--{name}="], "not registered"
    else:  # a free string: --tpu, which only a TPU strategy takes
        yield [f"--{name}=banana", "--strategy=default"], "conflicts with --strategy"


def test_the_walk_covers_every_flag_config_defines():
    defined = {flag.name for flag in flags.FLAGS.flags_by_module_dict()["mpl_tf.config"]}
    assert defined == set(FIELDS) and len(defined) >= 60
    a_file = "unused"
    for name, spec in FIELDS.items():
        assert list(bad_values(name, spec, a_file)), name


def test_every_bad_flag_value_fails_in_one_line_and_writes_nothing(tmp_path, capfd):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    failures, cases = [], 0
    os.chdir(REPO)
    for name, spec in FIELDS.items():
        for args, why in bad_values(name, spec, a_file):
            cases += 1
            model_dir = tmp_path / f"run{cases}"
            # a short run, should a bad value ever get through
            status = main_lib.main(["main", "--flagfile=flags/two_moons.cfg",
                                    f"--model_dir={model_dir}", "--train_steps=100",
                                    "--log_every=100", *args])
            out, err = capfd.readouterr()
            lines = err.strip().splitlines()
            ok = (status == 2 and len(lines) == 1 and lines[0].startswith("error: ")
                  and f"--{name}" in lines[0] and "Traceback" not in err
                  and not model_dir.exists() and a_file.read_text() == "not a directory\n")
            if not ok:
                failures.append(f"{' '.join(args)} ({why}): status {status}, stderr "
                                f"{err[-300:]!r}")
    assert not failures, "\n".join(failures)
    assert cases > 4 * len(FIELDS)


@pytest.mark.parametrize("args,message", [
    (["--label_fraction=0.1", "--num_labeled=20"], "both set the number of labeled examples"),
    (["--uda_ratio=7", "--unlabeled_batch_size=100"], "both set the unlabeled batch"),
    (["--ema_start_step=10"], "needs --ema_decay > 0"),
    (["--extra_unlabeled"], "has no extra split"),
    (["--tpu=local", "--strategy=mirrored"], "is for --strategy=tpu"),
])
def test_conflicting_flags_are_refused(tmp_path, capfd, args, message):
    os.chdir(REPO)
    status = main_lib.main(["main", "--flagfile=flags/two_moons.cfg",
                            f"--model_dir={tmp_path / 'run'}", *args])
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_binary_flagfile_is_one_line(tmp_path, capfd):
    binary = tmp_path / "recipe.cfg"
    binary.write_bytes(b"\x00\xff\xfe\x80 not text")
    status = main_lib.main(["main", f"--flagfile={binary}", f"--model_dir={tmp_path / 'run'}"])
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and err == [f"error: cannot read --flagfile={binary} as text "
                                   "(UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff "
                                   "in position 1: invalid start byte)"]


@pytest.mark.parametrize("command", [main_lib, evaluate, predict, export, publish],
                         ids=lambda m: m.__name__)
@pytest.mark.parametrize("flag", ["--help", "--helpshort", "--helpfull"])
def test_help_works_on_every_command(command, flag, capfd, tmp_path):
    with pytest.raises(SystemExit) as exited:
        command.main([command.__name__, flag, f"--model_dir={tmp_path / 'run'}"])
    out, err = capfd.readouterr()
    assert exited.value.code == 0 and err == ""
    assert out.startswith(command.__doc__.strip().splitlines()[0])
    own = {main_lib: "--overwrite", evaluate: "--saved_model", predict: "--images",
           export: "--overwrite", publish: "--handle"}[command]
    assert f"{own}:" in out or f"--[no]{own[2:]}:" in out
    if command in (main_lib, evaluate):  # the training flags, from mpl_tf.config
        assert "--teacher_lr:" in out and "--[no]select_on_val:" in out
        assert ("absl.logging:" in out) == (flag == "--helpfull")  # absl's own: only --helpfull
    assert not (tmp_path / "run").exists()


def test_helpfull_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "mpl_tf.main", "--helpfull"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert "mpl_tf.config:" in done.stdout and "--feedback: <taylor|dot|exact|none>" in done.stdout


@pytest.mark.parametrize("command,args", [
    (main_lib, ["--adopt=banana"]), (main_lib, ["--overwrite=2"]),
    (predict, ["--overwrite=banana"]), (export, ["--overwrite=maybe"]),
], ids=["main_adopt", "main_overwrite", "predict_overwrite", "export_overwrite"])
def test_the_commands_own_boolean_flags_refuse_a_bad_value(command, args, tmp_path, capfd):
    flags.FLAGS.unparse_flags()
    status = command.main([command.__name__, f"--model_dir={tmp_path / 'run'}", *args]
                          if command is not predict else [command.__name__, *args])
    err = capfd.readouterr().err.strip().splitlines()
    name = args[0].split("=")[0]
    assert status == 2 and len(err) == 1 and name in err[0], err
    assert not (tmp_path / "run").exists()
