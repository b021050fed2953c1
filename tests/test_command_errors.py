"""The one error tail every command shares (`cli.run`): each kind of failure is one line on
stderr with the same exit status whichever command meets it, a signal that stopped training is
where its checkpoint is, and a bug still raises; machine faults while a run directory is
written are one line and status 1."""

import errno
import signal

import pytest
from absl import flags

from mpl_tf import cli
from mpl_tf import errors
from mpl_tf import evaluate, export, predict, publish
from mpl_tf.durable import preemption
from mpl_tf import main as main_lib
from mpl_tf.data.folder import to_tfds

COMMANDS = {"main": main_lib, "evaluate": evaluate, "predict": predict, "export": export,
            "publish": publish, "folder_to_tfds": to_tfds}
KINDS = [(flags.Error("--x: bad"), 2), (errors.ConfigError("--x=1 must be > 1"), 2),
         (errors.CredentialsError("no credentials"), 2),
         (errors.UnreadableInput("a.png is not a readable image"), 2),
         (errors.UnwritableOutput("cannot write --output=o.json"), 2),
         (errors.DamagedFile("RUN/config.json is damaged (not JSON): restore it"), 2),
         (errors.TrainingError("stopped at step 3"), 1),
         (errors.UploadError("publishing h failed"), 1),
         (errors.MachineFault("the disk holding --model_dir=d is full"), 1)]


def _failing_with(monkeypatch, error):
    """Makes every command's first step, parsing its flags, raise `error`."""
    def parse_flags(*args):
        raise error

    monkeypatch.setattr(cli, "parse_flags", parse_flags)


@pytest.mark.parametrize("error,status", KINDS, ids=lambda k: type(k).__name__)
@pytest.mark.parametrize("command", COMMANDS)
def test_each_kind_of_error_is_one_line_and_its_status_on_every_command(
        command, error, status, monkeypatch, capsys):
    _failing_with(monkeypatch, error)
    assert COMMANDS[command].main([command]) == status
    captured = capsys.readouterr()
    assert captured.err == f"error: {error}\n" and captured.out == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_a_stopped_training_says_where_its_checkpoint_is(command, monkeypatch, capsys):
    _failing_with(monkeypatch, preemption.Interrupted(signal.SIGTERM, 250, "DIR/checkpoints"))
    assert COMMANDS[command].main([command]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == ("stopped by SIGTERM: saved a checkpoint at step 250 in "
                                       "DIR/checkpoints; rerun the same command to resume from "
                                       "there\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bug_is_not_hidden(command, monkeypatch):
    _failing_with(monkeypatch, KeyError("a bug"))
    with pytest.raises(KeyError, match="a bug"):
        COMMANDS[command].main([command])


def test_every_error_kind_is_listed_here():
    def kinds(cls):
        return {cls} | set().union(*(kinds(sub) for sub in cls.__subclasses__()))

    assert {type(error) for error, _ in KINDS} - {flags.Error} == kinds(errors.CommandError) - {
        errors.CommandError}


def test_config_error_is_importable_from_config():
    from mpl_tf.errors import ConfigError, TrainingError

    assert ConfigError is errors.ConfigError and TrainingError is errors.TrainingError
    assert issubclass(ConfigError, ValueError) and issubclass(TrainingError, RuntimeError)


@pytest.mark.parametrize("fault,message", [
    (OSError(errno.ENOSPC, "No space left on device"),
     "the disk holding --model_dir=RUN is full"),
    (PermissionError(errno.EACCES, "Permission denied"), "cannot write to --model_dir=RUN"),
    (MemoryError(), "out of memory"),
])
def test_machine_faults_while_writing_a_run_become_one_line(tmp_path, fault, message):
    with pytest.raises(errors.MachineFault) as raised:
        with cli.machine_faults(str(tmp_path)):
            raise fault
    assert message.replace("RUN", str(tmp_path)) in str(raised.value)
    assert "the last checkpoint, none yet, is intact" in str(raised.value)
    assert raised.value.exit_status == 1


@pytest.mark.parametrize("error", [KeyError("a bug"),
                                   errors.ConfigError("No space left on device")])
def test_other_errors_pass_machine_faults_unchanged(tmp_path, error):
    with pytest.raises(type(error)) as raised:
        with cli.machine_faults(str(tmp_path)):
            raise error
    assert raised.value is error


def test_a_full_disk_during_export_is_one_line_and_status_1(tmp_path, monkeypatch, capsys):
    from export_testing import make_run

    from mpl_tf.serving import export as serving_export

    make_run(tmp_path)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serving_export, "write_serving_model", full)
    assert export.main(["export", f"--model_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: the disk holding --model_dir="
                                                   f"{tmp_path} is full")
    assert not (tmp_path / "export").exists()
