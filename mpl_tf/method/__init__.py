"""The methods `--method` names: what is trained, each one class (mpl_tf/method/mpl.py,
controls.py). Names are known without importing TensorFlow (flags are defined and checked
before it is imported)."""

NAMES = ("mpl", "uda", "supervised")
