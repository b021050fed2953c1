"""What the command lines share, so each command is its flags and its work: TensorFlow imported
and started with its C++ start-up notices kept off stderr (they reach file descriptor 2 before
any log setting applies, and a command's error must be its only line), flag parsing with
--help, --helpshort and --helpfull, and the one place that turns a failure into one line on
stderr and an exit status (`run`)."""

import contextlib
import os
import sys

from absl import flags

from mpl_tf import errors
from mpl_tf.durable import preemption
from mpl_tf.durable import tf_logs


_real_stderr = []  # the saved descriptor 2 while it is silenced
# Every command imports this module before anything imports TensorFlow: its log level is set
# here, so it holds whichever module imports TensorFlow first.
tf_logs.before_import()


@contextlib.contextmanager
def stderr_silenced():
    """Sends file descriptor 2 to /dev/null for the duration."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    _real_stderr.append(saved)
    try:
        yield
    finally:
        _real_stderr.remove(saved)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def real_stderr():
    """The descriptor of the user's stderr, also from inside `stderr_silenced` (for a helper
    process whose one line must reach the user while TensorFlow starts)."""
    return _real_stderr[0] if _real_stderr else 2


def import_tensorflow():
    """TensorFlow, imported with descriptor 2 silenced (a module that needs it at import time
    takes it from here, so importing a command prints nothing)."""
    tf_logs.before_import()
    with stderr_silenced():
        import tensorflow as tf
    tf_logs.after_import(tf)
    return tf


def start_tensorflow(start=None):
    """Starts TensorFlow's runtime with descriptor 2 silenced (its device probing writes notices
    there too) and returns what `start()` returns: by default the logical devices; a command
    whose distribution strategy must be TensorFlow's first work passes its creation."""
    tf = import_tensorflow()
    with stderr_silenced():
        return start() if start else tf.config.list_logical_devices()


HELP_FLAGS = ("--help", "--helpshort", "--helpfull")


def parse_flags(flag_values, argv, doc):
    """Parses `argv` into `flag_values`, starting from their defaults (so a command can be run
    twice in one process).

    absl's own --help flags come with `absl.app.run`, which these commands do not use (they
    return an exit status instead), so they are handled here: --help and --helpshort print the
    command's docstring and its own flags, --helpfull every flag grouped by module, to stdout,
    and exit 0 before anything is read or written. A flagfile that is not text is a
    `flags.Error`, like every other bad flag, rather than a UnicodeDecodeError traceback.
    """
    wanted = [arg for arg in argv[1:] if arg in HELP_FLAGS]
    if wanted:
        print(_help(flag_values, doc, full=wanted[0] == "--helpfull"))
        raise SystemExit(0)
    flag_values.unparse_flags()
    try:
        flag_values(argv)
    except (UnicodeDecodeError, ValueError) as e:  # absl's own errors are not ValueErrors
        files = [arg.split("=", 1)[-1] for arg in argv[1:] if arg.startswith("--flagfile=")]
        unreadable = [name for name in files if not _is_text(name)] or files
        raise flags.Error(f"cannot read --flagfile={','.join(unreadable)} as text "
                          f"({type(e).__name__}: {e})") from None


def _is_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            f.read()
        return True
    except (OSError, ValueError):
        return False


def _help(flag_values, doc, full):
    if full:
        listing = flag_values.get_help()
    else:
        listing = "\n".join(flag_values.module_help(module) for module in
                            sorted(flag_values.flags_by_module_dict()) if "mpl_tf" in module)
    more = "" if full else "\n\nTry --helpfull to get a list of all flags."
    return f"{doc.strip()}\n\nflags:\n{listing.strip()}{more}"


def run(body, flag_values, argv, doc, expand=None, tensorflow=False):
    """A command: parses `argv` into `flag_values` (see `parse_flags`; `expand` first rewrites
    --recipe=NAME), starts TensorFlow quietly if `tensorflow`, and returns `body(flag_values)`,
    its exit status. What stops it is one line on stderr instead of a traceback: a bad flag as
    "error: MESSAGE" and status 2, an `errors.CommandError` likewise with its own
    `exit_status`, and training stopped by a signal (`preemption.Interrupted`) as where its
    checkpoint is, status 128 + the signal, as a shell reports a process a signal ended.
    Anything else is a bug and raises."""
    try:
        parse_flags(flag_values, expand(argv) if expand else argv, doc)
        if tensorflow:
            start_tensorflow()
        return body(flag_values)
    except flags.Error as e:
        return _error(e, 2)
    except errors.CommandError as e:
        return _error(e, e.exit_status)
    except preemption.Interrupted as e:
        where = (f"saved a checkpoint at step {e.step} in {e.directory}" if e.step is not None
                 else "its last checkpoint is kept")
        print(f"stopped by {e}: {where}; rerun the same command to resume from there",
              file=sys.stderr)
        return 128 + e.signum


def require(flag_values, *names, why=None):
    """Raises ConfigError unless every flag of `names` is set: "--a and --b are required", or
    "--a is required: WHY"."""
    if not all(flag_values[name].value for name in names):
        listed = " and ".join(f"--{name}" for name in names)
        raise errors.ConfigError(f"{listed} {'are' if len(names) > 1 else 'is'} required"
                                 + (f": {why}" if why else ""))


def _error(message, status):
    print(f"error: {message}", file=sys.stderr)
    return status


@contextlib.contextmanager
def machine_faults(model_dir):
    """Turns a fault of the machine while a command writes the run directory `model_dir` (a full
    disk, an unwritable directory, exhausted memory: `faults.describe`) into an
    `errors.MachineFault`, whose one line names the cause and the last intact checkpoint;
    anything else passes unchanged."""
    try:
        yield
    except errors.CommandError:
        raise
    except Exception as e:  # noqa: BLE001 - only the faults `describe` knows are turned
        from mpl_tf.durable import faults  # imports TensorFlow, which a fault here has loaded already

        line = faults.describe(e, model_dir)
        if line is None:
            raise
        raise errors.MachineFault(line) from e
