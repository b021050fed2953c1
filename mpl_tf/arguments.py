"""What `cli.parse_flags` checks besides the flags' own values, for every command alike:

* no positional argument: absl leaves a word that is not a flag for the program, and these
  commands have none, so `--overwrite false` (a boolean flag takes no separate value) or a
  stray word would be silently ignored; it is refused, naming it (`check_positional`);
* every line of a flagfile, nested ones included, is a flag, a comment or blank: absl ignores
  a line like `labeled_batch_size 5` (no dashes) as a positional argument, so it is refused
  naming the file and the line (`check_flagfiles`), before absl reads them;
* a path flag's leading `~` is the user's home directory, as in a shell (`expand_paths`), so
  `--model_dir=~/runs/x` does not create a folder named `~`.
"""

import dataclasses
import os

from absl import flags

from mpl_tf.config import Config

# The flags naming files or directories, in every command: the run's (the Config's fields of
# kind "path") and the commands' own.
COMMAND_PATH_FLAGS = ("saved_model", "images", "output", "export_dir", "folder")
PATH_FLAGS = (*(field.name for field in dataclasses.fields(Config)
                if field.metadata["spec"].kind == "path"), *COMMAND_PATH_FLAGS)
_FLAGFILE = ("--flagfile", "-flagfile")


def check_flagfiles(argv):
    """Raises flags.Error for the first line of a flagfile in `argv` (or one it includes) that
    is not a flag (-x or --x), a comment (# or //) or blank. Files are read as absl reads them
    (relative to the working directory); one that cannot be opened is left for absl to say."""
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return
        if arg in _FLAGFILE and rest:
            _check_flagfile(os.path.expanduser(rest.pop(0)), [])
        elif arg.split("=", 1)[0] in _FLAGFILE and "=" in arg:
            _check_flagfile(os.path.expanduser(arg.split("=", 1)[1].strip()), [])


def _check_flagfile(path, stack):
    if not path or path in stack:  # absl: an empty name is nothing, a cycle is warned about
        return
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, ValueError):
        return  # absl's own error (or cli's "cannot read ... as text") says it
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(("#", "//")):
            continue
        if not text.startswith("-"):
            raise flags.Error(f"{path}:{number}: {text!r} is not a flag (a flagfile line is "
                              "--name=value, a comment starting with # or //, or blank)")
        name, equals, value = text.partition("=")
        if name in _FLAGFILE and equals:
            _check_flagfile(os.path.expanduser(value.strip()), [*stack, path])


def check_positional(flag_values, argv, unparsed):
    """Raises flags.Error naming the first positional argument absl left unparsed (`unparsed`:
    what parsing `argv` returned after the program name); a word after a boolean flag is
    hinted as its value (`--overwrite false` -> `--overwrite=false`)."""
    if not unparsed:
        return
    word = unparsed[0]
    if word == "--" and len(unparsed) > 1:
        word = unparsed[1]
    args = list(argv[1:])
    previous = args[args.index(word) - 1] if word in args and args.index(word) > 0 else None
    hint = ""
    if previous and previous.startswith("-") and "=" not in previous:
        name = previous.lstrip("-")
        boolean = name if name in flag_values else name[2:] if name.startswith("no") else None
        if boolean in flag_values and flag_values[boolean].boolean:
            hint = f" (a boolean flag takes its value after '=': --{boolean}={word})"
    raise flags.Error(f"unexpected argument {word!r}: these commands take flags only{hint}")


def expand_paths(flag_values):
    """Expands a leading ~ in every path flag (`PATH_FLAGS`) that `flag_values` defines and is
    set, and in --dataset=folder:~/..."""
    for name in PATH_FLAGS:
        if name in flag_values and isinstance(flag_values[name].value, str):
            expanded = os.path.expanduser(flag_values[name].value)
            if expanded != flag_values[name].value:
                flag_values[name].value = expanded
    if "dataset" in flag_values and isinstance(flag_values["dataset"].value, str):
        prefix, colon, folder = flag_values["dataset"].value.partition(":")
        if colon and prefix == "folder" and folder.startswith("~"):
            flag_values["dataset"].value = f"folder:{os.path.expanduser(folder)}"
