"""The installed console commands (pyproject.toml, [project.scripts]): `mpl-tf-train`,
`mpl-tf-evaluate`, `mpl-tf-predict`, `mpl-tf-export`, `mpl-tf-publish`.

Each runs the very `main(argv)` that `python -m mpl_tf.main` (resp. `mpl_tf.evaluate`, ...)
runs, with the same arguments and exit status, so the two ways cannot drift apart. A console
entry point is called without arguments, hence these wrappers; the module is imported only when
its command runs (one command's flags and imports do not slow another's start).
"""

import importlib
import sys

# Command name -> the module whose main(argv) it runs.
COMMANDS = {"mpl-tf-train": "mpl_tf.main", "mpl-tf-evaluate": "mpl_tf.evaluate",
            "mpl-tf-predict": "mpl_tf.predict", "mpl-tf-export": "mpl_tf.export",
            "mpl-tf-publish": "mpl_tf.publish"}


def _run(command):
    sys.exit(importlib.import_module(COMMANDS[command]).main(sys.argv))


def train():
    _run("mpl-tf-train")


def evaluate():
    _run("mpl-tf-evaluate")


def predict():
    _run("mpl-tf-predict")


def export():
    _run("mpl-tf-export")


def publish():
    _run("mpl-tf-publish")
