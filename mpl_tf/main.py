"""Command line: `python -m mpl_tf.main --flagfile=flags/two_moons.cfg --model_dir=DIR` (or,
installed, `mpl-tf-train --recipe=two_moons --model_dir=DIR` from any directory).

Every flag, then the data, is checked before anything is written (most flags before TensorFlow
is even imported), so a bad value costs one line on stderr and exit status 2, and nothing is
written. --help and --helpshort list the flags, --helpfull also absl's own.
"""

import dataclasses
import os
import sys

from absl import flags

from mpl_tf import cli
from mpl_tf.durable import quiet
from mpl_tf import config as config_lib
from mpl_tf import errors
from mpl_tf import recipes
from mpl_tf.durable import lock
from mpl_tf.durable import readback
from mpl_tf.durable import run_dir

flags.DEFINE_bool("overwrite", False, "Replace the run in --model_dir (only the files a run "
                  "writes are deleted).")
flags.DEFINE_bool("adopt", False, "Mark --model_dir, a run made without mpl_tf_run.json (by an "
                  "older mpl_tf, or whose marker was lost), as a run directory, so it resumes "
                  "(or is replaced with --overwrite); refused unless every entry in it is one a "
                  "run writes and its config.json is readable.")


def _start_tensorflow(config):
    """Creates the strategy as TensorFlow's first work, as multi-worker collectives require,
    with its start-up notices kept off stderr (`quiet.start_tensorflow`)."""

    def strategy():
        from mpl_tf.durable import strategies

        created = strategies.strategy(config.strategy, config.tpu, config.multi_worker_timeout)
        strategies.check_batch_sizes(created, config.labeled_batch_size,
                                     config.global_unlabeled_batch_size)
        strategies.check_jit(created, config.jit_compile)
        return created

    return quiet.start_tensorflow(strategy)


def _config_from_flags():
    """The flags' config; for --mode=finetune, the finished run's own config (its networks and
    data must be rebuilt exactly) in --model_dir, wherever the run directory now is (a copied
    or moved run finetunes in place), with the finetuning settings given on the command line
    replacing the run's recorded ones."""
    config = config_lib.Config.from_flags()
    if config.mode != "finetune":
        return cli.validated(config)
    cli.validated(config.replace(mode="train"))  # the flags' values; --finetune_steps may be unset
    saved = os.path.join(config.model_dir or "", run_dir.CONFIG)
    if not os.path.exists(saved):
        readback.verify(saved, config.model_dir)  # recorded by the run: lost, not never there
        raise errors.ConfigError(f"--mode=finetune needs a finished training run in "
                                 f"--model_dir={config.model_dir} (no config.json)")
    recorded = readback.read_config(config.model_dir)
    _refuse_ignored(config, recorded)
    given = {name: getattr(config, name) for name in config_lib.FINETUNING
             if flags.FLAGS[name].present}
    machine = {name: getattr(config, name) for name in _MACHINE}
    return cli.validated(recorded.replace(model_dir=config.model_dir, mode="finetune",
                                          **machine, **given))


# What --mode=finetune takes from this machine's command line besides config_lib.FINETUNING.
_MACHINE = ("strategy", "tpu", "multi_worker_timeout")


def _refuse_ignored(config, recorded):
    """Raises ConfigError for a flag given with --mode=finetune whose value is not the run's
    `recorded` one, as finetuning would silently ignore it (repeating the training command, with
    the recorded values, is fine)."""
    taken = {*config_lib.FINETUNING, *_MACHINE, "mode", "model_dir"}
    for name in (field.name for field in dataclasses.fields(config)):
        value, kept = getattr(config, name), getattr(recorded, name)
        if name not in taken and flags.FLAGS[name].present and value != kept:
            typed = any(arg.split("=", 1)[0] in (f"--{name}", f"--no{name}")
                        for arg in _command[1:])
            drop = f"drop --{name}" if typed else \
                f"drop the --recipe or --flagfile that sets --{name}"
            raise errors.ConfigError(
                f"--{name}={config_lib.flag_text(value)} is not the run's "
                f"--{name}={config_lib.flag_text(kept)} (its config.json): --mode=finetune keeps "
                "the run's settings and takes only "
                f"{', '.join('--' + n for n in config_lib.FINETUNING)} from the command line; "
                f"{drop}")


_command = []  # this process's command line, recorded in a new run's marker


def main(argv):
    """Trains; what stops it is one line on stderr and an exit status (`cli.run`), and a Ctrl-C
    outside training (where nothing is saved) too."""
    _command[:] = argv
    try:
        return cli.run(_main, flags.FLAGS, argv, __doc__, expand=recipes.expand)
    except KeyboardInterrupt:  # before training, or a second Ctrl-C during it
        print("interrupted: stopped without saving; rerunning the same command resumes from "
              "the last checkpoint, if any", file=sys.stderr)
        return 130
    finally:
        lock.release_all()


def _main(values):
    config = _config_from_flags()
    strategy = _start_tensorflow(config)
    from mpl_tf import method as methods
    from mpl_tf import models
    from mpl_tf.data import bounds, sources
    from mpl_tf.durable import strategies
    from mpl_tf.run import mismatch, orchestrate, teacher_init

    data = sources.load(config)
    models.check_input_shape(config.model, data.input_shape)
    if config.teacher_init and config.mode == "train":
        teacher_init.check(config, data.input_shape, data.num_classes)
    bounds.check(config, data, unlabeled_batches=methods.get(config.method).UNLABELED)
    if strategies.is_chief(strategy):  # other workers write to a temporary directory
        run_dir.prepare(config, overwrite=values.overwrite, adopt=values.adopt,
                        command=_command)

    early = mismatch.network_warnings(config, data) if config.mode == "train" else []
    for warning in early:  # before training, so the user can stop it
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    with cli.machine_faults(config.model_dir):
        if config.mode == "finetune":
            results = orchestrate.finetune_run(config, data, strategy)
        else:
            results = orchestrate.run(config, data, strategy, warnings=early)
    print(f"{results['method']} on {results['dataset']}: test accuracy "
          f"{results['test_accuracy']:.4f}, val accuracy {results['val_accuracy']:.4f}; "
          f"results in {os.path.join(config.model_dir, 'results.json')}")
    late = [w for w in results.get("warnings", []) if w not in early]
    if results.get("diverged"):
        print(f"warning: the run diverged: {'; '.join(late)}", file=sys.stderr)
    elif late:
        print(f"warning: {'; '.join(late)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
