"""Exports a finished run for serving and reuse:

    python -m mpl_tf.export --model_dir=DIR [--overwrite]

(installed: `mpl-tf-export`). Writes DIR/export: saved_model/, a TF Serving SavedModel with the
preprocessing inside, and hub/, TF Hub modules (classification, feature-vector) with the model
card and Kaggle Models metadata (see mpl_tf/serving/export.py). A failed export leaves the old one,
or none, never half of one.
"""

import os
import sys

from absl import flags

from mpl_tf import cli
from mpl_tf.durable import lock
from mpl_tf.serving import export


def main(argv):
    """Exports --model_dir; a failure is one line on stderr (`cli.run`): a bad flag or an
    unfinished run exit status 2, a fault of the machine 1."""
    values = flags.FlagValues()
    flags.DEFINE_string("model_dir", None, "Run directory holding a finished run.",
                        flag_values=values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing DIR/export.", flag_values=values)
    return cli.run(_export, values, argv, __doc__, tensorflow=True)


def _export(values):
    cli.require(values, "model_dir", why="the run directory to export")
    export.check_finished(values.model_dir)
    lock.acquire(values.model_dir)  # one writer: a training, a finetuning or another export
    try:
        with cli.machine_faults(values.model_dir):
            target = export.export_run(values.model_dir, overwrite=values.overwrite)
    finally:
        lock.release(values.model_dir)
    print(f"exported {values.model_dir}: serving SavedModel in "
          f"{os.path.join(target, 'saved_model')}, TF Hub modules and model card in "
          f"{os.path.join(target, 'hub')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
