"""What the command lines share: TensorFlow's C++ start-up notices are written to file
descriptor 2 before any log setting applies, and a command's error must be its only line; and
flag parsing with --help, --helpshort and --helpfull."""

import contextlib
import os

from absl import flags


_real_stderr = []  # the saved descriptor 2 while it is silenced


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
