"""`--teacher_init=RUN_DIR`: MPL's teacher (or the one network of supervised, uda and fixmatch)
starts from the served network of a finished run (model/serving.weights.h5, the network that run
evaluated and exported), e.g. a teacher pretrained on swapped labels for the feedback test.

The run must be finished (results.json, config.json, dataset_info.json and the weights) and its
network must fit this one: the same --model (and MLP widths), number of classes and input shape;
anything else, a damaged file or a run inside --model_dir is one line (ConfigError), checked by
main before the run directory is written.
The loaded network includes its input normalisation (the pixel statistics of its own run), so it
computes what it computed there. A resumed run restores its checkpoints over it, as any run does.
"""

import os

from mpl_tf.durable import readback, run_dir
from mpl_tf.errors import ConfigError, DamagedFile
from mpl_tf.serving import export

NEEDED = (run_dir.RESULTS, run_dir.CONFIG, run_dir.DATASET_INFO, run_dir.SERVING_WEIGHTS)


def check(config, input_shape, num_classes):
    """The served network of the run --teacher_init names; ConfigError unless that is a
    finished run outside --model_dir (whose --overwrite would delete it), its files intact,
    and its network this run's: same --model (and MLP widths), classes and input shape."""
    path = config.teacher_init
    flag = f"--teacher_init={path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{flag} is not a directory")
    if config.model_dir and _within(path, config.model_dir):
        raise ConfigError(f"{flag} is --model_dir={config.model_dir} or inside it, which this "
                          "run writes (and --overwrite empties); copy that run elsewhere first")
    missing = [name for name in NEEDED if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ConfigError(f"{flag} holds no finished run (missing {', '.join(missing)})")
    try:
        saved = readback.read_config(path)
        info = readback.read_run_json(path, run_dir.DATASET_INFO)
        readback.read_run_json(path, run_dir.RESULTS)
    except DamagedFile as e:
        raise ConfigError(f"{flag}: {e}") from None
    if saved.model != config.model or (config.model == "mlp"
                                       and saved.mlp_hidden != config.mlp_hidden):
        shown = saved.model + (f" --mlp_hidden={','.join(map(str, saved.mlp_hidden))}"
                               if saved.model == "mlp" else "")
        raise ConfigError(f"{flag} trained --model={shown}; this run's network differs "
                          f"(--model={config.model})")
    if info["num_classes"] != num_classes:
        raise ConfigError(f"{flag} has {info['num_classes']} classes; this run's data has "
                          f"{num_classes}")
    if tuple(info["input_shape"]) != tuple(input_shape):
        raise ConfigError(f"{flag} takes inputs of shape {tuple(info['input_shape'])}; this "
                          f"run's data has {tuple(input_shape)}")
    try:
        return export.load_run(path, config=saved).network
    except (DamagedFile, ConfigError) as e:
        raise ConfigError(f"{flag}: {e}") from None


def load(model, config, input_shape, num_classes):
    """Loads the served network of --teacher_init into `model`'s teacher (MPL) or its one
    network (the controls), whose EMA, if any, then starts from it too."""
    served = check(config, input_shape, num_classes)
    network = getattr(model, "teacher", None) or model.trained_network
    try:
        # rebuilt as that run built it, then copied value by value: the exact feedback's
        # networks have Keras' batch norm where the saved one has the fused kernel (the same
        # variables, another saved structure)
        network.set_weights(served.get_weights())
    except ValueError as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        weights = os.path.join(config.teacher_init, run_dir.SERVING_WEIGHTS)
        raise ConfigError(f"--teacher_init={config.teacher_init}: {weights} does not load into "
                          f"this run's network ({reason})") from e
    ema = getattr(model, "_ema", None)  # trainer.ClassifierTrainer's EMA of the trained network
    if ema is not None and network is model.trained_network:
        ema.reset()


def _within(path, directory):
    """Whether `path` is `directory` or inside it, symbolic links resolved."""
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory
