"""What the command lines share, so each command is its flags and its work: flag parsing with
--help, --helpshort and --helpfull, and the one place that turns a failure into one line on
stderr and an exit status (`run`)."""

import contextlib
import dataclasses
import sys

from absl import flags

from mpl_tf import arguments
from mpl_tf import config as config_lib
from mpl_tf import errors
from mpl_tf import method
from mpl_tf.data import sources
from mpl_tf.durable import preemption, quiet
from mpl_tf.method import feedback, pseudo_labels

# The names each registry offers, for the run flags that name an entry of one (known without
# importing TensorFlow, so a bad name fails before it starts).
REGISTRIES = {"method": method.NAMES, "feedback": feedback.NAMES,
              "feedback_forwards": tuple(feedback.FORWARDS), "label_type": pseudo_labels.NAMES}
config_lib.define_flags(flags.FLAGS, REGISTRIES)
# Every command imports this module before anything imports TensorFlow: the log level set here
# holds whichever module imports TensorFlow first.
quiet.before_import()


def validated(config):
    """`config`, checked alone (`Config.validate`) and against the installed registries."""
    return check_registered(config.validate())


def check_registered(config):
    """Raises ConfigError unless every name `config` gives is one the installed code offers:
    the method, estimator and label type, the network, the dataset and the activation (an MPL
    run's estimator must also take its label type and sign, --extra_unlabeled and --cache_dir
    need a dataset they apply to). The network and dataset registries load TensorFlow, whose
    start-up notices are kept off stderr. Returns `config`."""
    for field in dataclasses.fields(config):
        names = REGISTRIES.get(field.metadata["spec"].registry)
        if names is not None and getattr(config, field.name) not in names:
            raise errors.ConfigError(f"--{field.name}={getattr(config, field.name)} is not "
                                     f"valid; valid values: {', '.join(names)}")
    quiet.import_tensorflow()
    import keras

    from mpl_tf import models

    models.check_name(config.model)
    _check_method_flags(config)
    feedback.check_config(config)
    sources.check_config(config)
    try:
        keras.activations.get(config.mlp_activation)
    except ValueError:
        raise errors.ConfigError(f"--mlp_activation={config.mlp_activation} is not a Keras "
                                 "activation (e.g. sigmoid, relu, tanh, gelu, silu)") from None
    return config


def _check_method_flags(config):
    """Flags that need a teacher: --teacher_lr=0 freezes one (a one-network method would train
    nothing at --network_lr's fallback), --teacher_supervised_weight weighs a teacher's objective
    (MPL's teacher and UDA's network have one)."""
    trainer = method.get(config.method)
    roles = {network.optimizer for network in trainer.NETWORKS}
    if config.teacher_lr == 0 and "teacher" not in roles and not config.network_lr:
        raise errors.ConfigError(f"--teacher_lr=0 freezes MPL's teacher; --method={config.method} "
                                 "would train nothing (its --network_lr falls back on it): pass "
                                 "--network_lr > 0")
    if config.teacher_supervised_weight != 1 and "uda_weight" not in trainer.FLAGS:
        having = [name for name in method.NAMES if "uda_weight" in method.get(name).FLAGS]
        raise errors.ConfigError(f"--teacher_supervised_weight={config.teacher_supervised_weight:g}"
                                 f" weighs a teacher's objective; --method={config.method} has "
                                 f"none (the methods with one: {', '.join(having)})")


HELP_FLAGS = ("--help", "--helpshort", "--helpfull")
# Modules whose flags --help leaves to --helpfull: the libraries', not the command's own (a
# benchmark's flags live in its module and in benchmarks.ablation, mpl_tf's in mpl_tf.config).
LIBRARY_MODULES = ("absl.", "tensorflow.", "keras", "tf_keras")


def parse_flags(flag_values, argv, doc):
    """Parses `argv` into `flag_values`, starting from their defaults (so a command can be run
    twice in one process).

    absl's own --help flags come with `absl.app.run`, which these commands do not use (they
    return an exit status instead), so they are handled here: --help and --helpshort print the
    command's docstring and its own flags, --helpfull every flag grouped by module, to stdout,
    and exit 0 before anything is read or written. A flagfile that is not text is a
    `flags.Error`, like every other bad flag, rather than a UnicodeDecodeError traceback; so are
    a positional argument and a flagfile line that is not a flag, and path flags have ~ expanded
    (`arguments`).
    """
    wanted = [arg for arg in argv[1:] if arg in HELP_FLAGS]
    if wanted:
        print(_help(flag_values, doc, full=wanted[0] == "--helpfull"))
        raise SystemExit(0)
    flag_values.unparse_flags()
    arguments.check_flagfiles(argv)
    try:
        unparsed = flag_values(argv)[1:]
    except (UnicodeDecodeError, ValueError) as e:  # absl's own errors are not ValueErrors
        files = [arg.split("=", 1)[-1] for arg in argv[1:] if arg.startswith("--flagfile=")]
        unreadable = [name for name in files if not _is_text(name)] or files
        raise flags.Error(f"cannot read --flagfile={','.join(unreadable)} as text "
                          f"({type(e).__name__}: {e})") from None
    arguments.check_positional(flag_values, argv, unparsed)
    arguments.expand_paths(flag_values)


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
                            sorted(flag_values.flags_by_module_dict())
                            if not module.startswith(LIBRARY_MODULES))
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
            quiet.start_tensorflow()
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
