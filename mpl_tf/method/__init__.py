"""The training methods, by the name `--method` takes.

A method is one `ClassifierTrainer` subclass (mpl_tf/method/trainer.py lists what it declares:
its networks and their seeds and optimizers, its labeled loss, its titles, its own flags, its
extra results) plus one line in `METHODS`; building, the run, the 2-D control, the model card
and the config's checks read the class, never the name. Names are known without importing
TensorFlow (the flags are defined and checked before it is imported); a method's module loads
when `get` asks for it (by its name: this package's own modules import from it).
"""

import importlib

# name: (module in this package, class)
METHODS = {
    "mpl": ("mpl", "MetaPseudoLabels"),
    "uda": ("controls", "UDA"),
    "supervised": ("controls", "Supervised"),
    "fixmatch": ("fixmatch", "FixMatch"),
}
NAMES = tuple(METHODS)

# The method of the supervised control a 2-D run is drawn beside, and of finetuning.
CONTROL = "supervised"


def get(name):
    """The `ClassifierTrainer` subclass registered as `name`."""
    module, cls = METHODS[name]
    return getattr(importlib.import_module(f"mpl_tf.method.{module}"), cls)


__all__ = ["CONTROL", "METHODS", "NAMES", "get"]
