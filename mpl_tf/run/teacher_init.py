"""`--teacher_init=RUN_DIR`: MPL's teacher (or, for --method=supervised and uda, the one network)
starts from the served network of a finished run (model/serving.weights.h5, the network that run
evaluated and exported), e.g. a teacher pretrained on swapped labels for the feedback test.

The run must be finished (results.json, config.json, dataset_info.json and the weights) and its
network must fit this one: the same --model (and MLP widths), number of classes and input shape;
anything else is one line (ConfigError), checked by main before the run directory is written.
The loaded network includes its input normalisation (the pixel statistics of its own run), so it
computes what it computed there. A resumed run restores its checkpoints over it, as any run does.
"""

import json
import os

from mpl_tf.durable import run_dir
from mpl_tf.errors import ConfigError, DamagedFile
from mpl_tf.serving import export

NEEDED = (run_dir.RESULTS, run_dir.CONFIG, run_dir.DATASET_INFO, run_dir.SERVING_WEIGHTS)


def check(config, input_shape, num_classes):
    """ConfigError unless --teacher_init names a finished run whose served network is this
    run's network: same --model (and MLP widths), classes and input shape."""
    path = config.teacher_init
    flag = f"--teacher_init={path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{flag} is not a directory")
    missing = [name for name in NEEDED if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ConfigError(f"{flag} holds no finished run (missing {', '.join(missing)})")
    saved, info = (_read(path, name) for name in ("config.json", "dataset_info.json"))
    theirs = (saved.get("model"), tuple(saved.get("mlp_hidden") or ()))
    if theirs[0] != config.model or (config.model == "mlp" and theirs[1] != config.mlp_hidden):
        shown = theirs[0] + (f" --mlp_hidden={','.join(map(str, theirs[1]))}"
                             if theirs[0] == "mlp" else "")
        raise ConfigError(f"{flag} trained --model={shown}; this run's network differs "
                          f"(--model={config.model})")
    if info.get("num_classes") != num_classes:
        raise ConfigError(f"{flag} has {info.get('num_classes')} classes; this run's data has "
                          f"{num_classes}")
    if tuple(info.get("input_shape") or ()) != tuple(input_shape):
        raise ConfigError(f"{flag} takes inputs of shape {tuple(info.get('input_shape') or ())}"
                          f"; this run's data has {tuple(input_shape)}")


def load(model, config, input_shape, num_classes):
    """Loads the served network of --teacher_init into `model`'s teacher (MPL) or its one
    network (the controls), whose EMA, if any, then starts from it too."""
    check(config, input_shape, num_classes)
    network = getattr(model, "teacher", None) or model.trained_network
    weights = os.path.join(config.teacher_init, run_dir.SERVING_WEIGHTS)
    try:
        # rebuilt as that run built it, then copied value by value: the exact feedback's
        # networks have Keras' batch norm where the saved one has the fused kernel (the same
        # variables, another saved structure)
        network.set_weights(export.load_run(config.teacher_init).network.get_weights())
    except (ValueError, OSError, DamagedFile) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"--teacher_init={config.teacher_init}: {weights} does not load into "
                          f"this run's network ({reason})") from e
    ema = getattr(model, "_ema", None)  # trainer.ClassifierTrainer's EMA of the trained network
    if ema is not None and network is model.trained_network:
        ema.reset()


def _read(path, name):
    try:
        with open(os.path.join(path, name)) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--teacher_init={path}: cannot read {name} ({e})") from e
