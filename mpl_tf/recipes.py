"""`--recipe=NAME`: a recipe (a flagfile of flags/) by name, from any directory.

A pip-installed user has no checkout, so `--flagfile=flags/NAME.cfg` means nothing in their
directory. The wheel carries the same files as `mpl_tf/flags/` (pyproject.toml maps flags/
there); a checkout, an editable install and Bazel's runfiles have them as the top-level flags/.
Either way the recipes sit in a `flags/` directory, which matters: a recipe may include another
as `--flagfile=flags/OTHER.cfg`, and absl opens that path relative to the working directory.
So a recipe is read by absl itself, from the directory holding that `flags/`, and its flags
take the place of `--recipe=NAME` in the command line: flags after it override it exactly as
they override a flagfile.
"""

import contextlib
import os

from absl import flags

from mpl_tf.errors import ConfigError

FLAGS_DIR = "flags"
SUFFIX = ".cfg"
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
ROOTS = (_PACKAGE,  # installed: mpl_tf/flags/ (from the wheel)
         os.path.dirname(_PACKAGE))  # a checkout: flags/ beside mpl_tf/

flags.DEFINE_string("recipe", None, "A packaged recipe by name, e.g. two_moons or cifar10_4000 "
                    "(README, Recipes): its flags, read from any directory; flags after it "
                    "override it. Only on the command line.")


def root():
    """The directory holding the recipes' flags/: the package when installed, else the
    checkout."""
    for candidate in ROOTS:
        if os.path.isdir(os.path.join(candidate, FLAGS_DIR)):
            return candidate
    raise ConfigError("no recipes found (looked for flags/ in " + ", ".join(ROOTS) + ")")


def names():
    """The recipe names, sorted."""
    return sorted(name[:-len(SUFFIX)] for name in os.listdir(os.path.join(root(), FLAGS_DIR))
                  if name.endswith(SUFFIX))


def path(name):
    """The flagfile of recipe `name`; an unknown name is a ConfigError listing the valid ones."""
    if name not in names():
        raise ConfigError(f"--recipe={name} is not a recipe; valid recipes: "
                          f"{', '.join(names())}")
    return os.path.join(root(), FLAGS_DIR, name + SUFFIX)


def recipe_flags(name):
    """The flags of recipe `name`, nested recipes included, as absl reads a flagfile."""
    recipe = path(name)
    with _working_directory(root()):
        return flags.FlagValues().read_flags_from_files([f"--flagfile={recipe}"])


def expand(argv):
    """`argv` with every `--recipe=NAME` (or `--recipe NAME`, one dash or two) replaced by the
    recipe's flags; arguments after `--` are left alone."""
    expanded, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return expanded + [arg] + rest
        option, equals, value = arg.partition("=")
        if option not in ("--recipe", "-recipe"):
            expanded.append(arg)
            continue
        if not equals:
            if not rest:
                raise ConfigError(f"--recipe needs a name; valid recipes: {', '.join(names())}")
            value = rest.pop(0)
        expanded += recipe_flags(value)
    return expanded


@contextlib.contextmanager
def _working_directory(directory):
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)
