"""Command line: `python -m mpl_tf.main --flagfile=flags/two_moons.cfg --model_dir=DIR` (or,
installed, `mpl-tf-train --recipe=two_moons --model_dir=DIR` from any directory).

Flags and data are checked before TensorFlow is imported, so a bad value costs one line on
stderr and exit status 2, and nothing is written.
"""

import os
import sys

from absl import flags

from mpl_tf import cli
from mpl_tf import config as config_lib
from mpl_tf import recipes
from mpl_tf import run_dir

flags.DEFINE_bool("overwrite", False, "Replace a finished run in --model_dir.")


def _start_tensorflow(config):
    """Imports TensorFlow and creates the strategy (before any other TensorFlow work, as
    multi-worker collectives require). TensorFlow's C++ start-up notices reach stderr before
    any log setting applies; they are silenced so an error is still the only line on stderr."""
    with cli.stderr_silenced():
        from mpl_tf import distribute

        strategy = distribute.strategy(config.strategy, config.tpu)
        distribute.check_batch_sizes(strategy, config.labeled_batch_size,
                                     config.global_unlabeled_batch_size)
        distribute.check_jit(strategy, config.jit_compile)
        return strategy


def _config_from_flags():
    """The flags' config; for --mode=finetune, the finished run's own config with the
    finetuning flags applied (its networks and data must be rebuilt exactly)."""
    config = config_lib.Config.from_flags().validate()
    if config.mode != "finetune":
        return config
    saved = os.path.join(config.model_dir or "", "config.json")
    if not os.path.exists(saved):
        raise config_lib.ConfigError(f"--mode=finetune needs a finished training run in "
                                     f"--model_dir={config.model_dir} (no config.json)")
    finetuning = {name: getattr(config, name) for name in
                  ("mode", "finetune_steps", "finetune_lr", "finetune_batch_size", "strategy",
                   "tpu")}
    return config_lib.Config.from_json(saved).replace(**finetuning).validate()


def main(argv):
    try:
        flags.FLAGS(recipes.expand(argv))
        config = _config_from_flags()
        strategy = _start_tensorflow(config)
        from mpl_tf.data import sources

        from mpl_tf import distribute, models

        data = sources.load(config)
        models.check_input_shape(config.model, data.input_shape)
        if distribute.is_chief(strategy):  # other workers write to a temporary directory
            run_dir.prepare(config, overwrite=flags.FLAGS.overwrite)
    except (flags.Error, config_lib.ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from mpl_tf import train

    try:
        results = (train.finetune_run if config.mode == "finetune" else train.run)(
            config, data, strategy)
    except config_lib.TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{results['method']} on {results['dataset']}: test accuracy "
          f"{results['test_accuracy']:.4f}, val accuracy {results['val_accuracy']:.4f}; "
          f"results in {os.path.join(config.model_dir, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
