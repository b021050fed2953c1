"""Every knob of a run, written once: the fields of the frozen `Config`, each with what it
accepts (kind, choices, bounds) and its help text; the absl flags are generated from them.

One description drives three things, so they cannot drift apart: the flags (`define_flags`),
the dataclass defaults, and `Config.validate`, which checks every value for type, finiteness,
choices and bounds, then their consistency with each other and with the registries of networks
and datasets, before anything is built or written, so a bad flag fails in one line.
"""

import dataclasses
import json
import math
import os

from absl import flags

from mpl_tf.errors import ConfigError

FEEDBACK_SIGNS = ("paper", "released")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
MODES = ("train", "finetune")
# What --mode=finetune takes from the command line (the rest comes from the run's config.json).
FINETUNING = ("finetune_steps", "finetune_lr", "finetune_batch_size")
PRECISIONS = ("float32", "bfloat16", "mixed_float16")
# Every integer flag is a signed 32-bit integer: seeds are mixed into numpy and TensorFlow seeds
# and steps into int64 counters, and both overflow (with a traceback) far beyond this.
INT_MAX = 2 ** 31 - 1
# Each layer takes two of a network's LayerSeeds.PER_NETWORK (1000) initializer seeds.
_MAX_MLP_LAYERS = 100
# Absolute caps of the size flags, which need no data (mpl_tf/data/bounds.py checks each against
# the data it applies to): a 2048-pixel RGB image is 50 MB as float32 (the paper's largest
# network trains at 800); a batch of a million examples, or a million-unit layer, is no
# run's.
MAX_IMAGE_SIZE = 2048
MAX_BATCH_SIZE = 2 ** 20
MAX_UDA_RATIO = 1024
MAX_MLP_WIDTH = 2 ** 16
# RandAugment's levels are out of 10 (the released CIFAR recipe extrapolates to 16); at 100 a
# rotation is 300 degrees and a translation ten times the image: nothing is left to learn.
MAX_MAGNITUDE = 100.0


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one field accepts. `kind` is the flag's type: str, path (a directory), enum (one of
    `choices`), int, float (always finite), bool, or ints (comma-separated widths). Numbers lie
    within `low`/`high` (open ends excluded), except `off`, the value that turns a feature off;
    for ints, `low` bounds each width and `high` their count.
    `registry` names what installed code the value must name: a network, a dataset or a Keras
    activation."""

    kind: str
    help: str
    choices: tuple = None
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False
    off: float = None
    registry: str = None
    why: str = None  # why `high` is the limit, said when a value exceeds it

    def problem(self, value):
        """Why `value` is not acceptable (the end of a sentence starting `--name=value`), or
        None; registries are checked separately, as they import TensorFlow."""
        if not self._has_type(value):
            return f"must be {_KIND_NAMES[self.kind]}"
        if self.kind == "float" and not math.isfinite(value):
            return "must be a finite number"
        if self.choices and value not in self.choices:
            return f"is not valid; valid values: {', '.join(self.choices)}"
        if self.kind == "ints":
            if not value or min(value) < self.low:
                return "must list positive widths"
            if max(value) > MAX_MLP_WIDTH:
                return f"must list widths of at most {MAX_MLP_WIDTH}"
            return None if len(value) <= self.high else f"must list at most {self.high} widths"
        if self.kind in ("int", "float") and value != self.off and not self._in_bounds(value):
            return self._bounds_text(value) + (f" (or {self.off:g}: off)" if self.off is not None
                                               else "")
        if self.kind == "path" and value:
            return not_a_directory(value)
        return None

    def _has_type(self, value):
        if self.kind in ("str", "path"):
            return value is None or isinstance(value, str)
        if self.kind == "ints":
            return isinstance(value, tuple) and all(_is_int(w) for w in value)
        types = {"enum": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
        return isinstance(value, types[self.kind]) and (self.kind == "bool"
                                                         or not isinstance(value, bool))

    def _in_bounds(self, value):
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def _bounds_text(self, value):
        if self.kind == "int":
            if value > self.high:
                return f"must be <= {self.high}" + (f" ({self.why})" if self.why else "")
            return "must be a positive integer" if self.low == 1 else f"must be >= {self.low}"
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {self.low:g}"
        return (f"must be in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


_KIND_NAMES = {"str": "a string", "path": "a directory path", "enum": "a string",
               "int": "an integer", "float": "a number", "bool": "true or false",
               "ints": "comma-separated integers"}


def not_a_directory(path):
    """Why `path` can never be a directory (it is a file, or lies under one), or None."""
    if os.path.exists(path):
        return None if os.path.isdir(path) else "is a file, not a directory"
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return None if os.path.isdir(parent) else f"lies under a file ({parent}), not a directory"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _field(default, spec):
    return dataclasses.field(default=default, metadata={"spec": spec})


def _str(default, help, registry=None):
    return _field(default, Spec("str", help, registry=registry))


def _path(default, help):
    return _field(default, Spec("path", help))


def _enum(default, choices, help, registry=None):
    """One of `choices`; or, for a `registry` field, one of the names that registry offers
    (given to `define_flags` and checked by `cli.check_registered`: the config imports no
    registry, which live above it)."""
    return _field(default, Spec("enum", help, choices=choices, registry=registry))


def _int(default, help, low=0, high=INT_MAX, why=None, off=None):
    return _field(default, Spec("int", help, low=low, high=high, why=why, off=off))


def _image_pixels(default, help):
    """A side in pixels, capped at MAX_IMAGE_SIZE."""
    return _int(default, help, high=MAX_IMAGE_SIZE,
                why="larger images do not fit a batch in memory")


def _batch(default, help):
    """A global batch size, capped at MAX_BATCH_SIZE."""
    return _int(default, help, low=1, high=MAX_BATCH_SIZE,
                why="no batch this large fits in memory")


def _float(default, help, low=0.0, high=None, low_open=False, high_open=False, off=None):
    return _field(default, Spec("float", help, low=low, high=high, low_open=low_open,
                                high_open=high_open, off=off))


def _fraction(default, help, high_open=True):
    """A decay, rate or probability in [0, 1)."""
    return _float(default, help, high=1.0, high_open=high_open)


def _bool(default, help):
    return _field(default, Spec("bool", help))


@dataclasses.dataclass(frozen=True)
class Config:
    """One run's settings; dumped to model_dir/config.json. Each field is the flag of its name."""

    # --- the run -----------------------------------------------------------------------------
    model_dir: str = _path("", "Run directory: config, logs, results.json, figures.")
    mode: str = _enum("train", MODES, "train: train (then finetune if --finetune_steps); "
                      "finetune: finetune the served network of a finished run in --model_dir.")
    method: str = _enum("mpl", None, "What is trained (mpl_tf/method): mpl, a teacher and a "
                        "student; one network for the controls: uda, the teacher's own "
                        "objective alone; supervised, labeled data only; fixmatch, confident "
                        "weak-view pseudo labels learnt on the strong view.", registry="method")
    dataset: str = _str("two_moons", "Data source (see mpl_tf/data/sources.py).",
                        registry="dataset")
    num_labeled: int = _int(12, "Labeled examples, class-balanced, chosen by split_seed.", low=1)
    split_seed: int = _int(0, "Seed of the labeled subset (same for every method).")
    seed: int = _int(0, "Seed of initialisation, augmentation and label sampling.")
    train_steps: int = _int(10000, "Training steps (teacher updates).", low=1)
    log_every: int = _int(1000, "Steps per Keras epoch: progress bar, CSV and TensorBoard.", low=1)
    checkpoint_every: int = _int(0, "Steps between full-state checkpoints (a multiple of "
                                 "--log_every; 0 means every --log_every steps). Rerunning the "
                                 "same command resumes from the newest one.")
    steps_per_execution: int = _int(1, "Steps run inside one tf.function call.", low=1)
    strategy: str = _enum("auto", STRATEGIES, "tf.distribute strategy (auto: TPU with --tpu, "
                          "multi_worker with a multi-worker TF_CONFIG, mirrored with several "
                          "GPUs, else default). Batch sizes are global, split evenly over "
                          "replicas.")
    jit_compile: bool = _bool(False, "Compile the train step with XLA (one device or TPU; on CPU "
                              "it was slower here, see benchmarks/results/step_benchmark.md).")
    precision: str = _enum("float32", PRECISIONS, "Compute precision of the networks: bfloat16 "
                           "and mixed_float16 keep float32 variables, inputs and logits and "
                           "compute the layers in 16 bits (mixed_float16 with dynamic loss "
                           "scaling for both optimizers; bfloat16 for TPUs and recent CPUs, "
                           "float16 for GPUs).")
    tpu: str = _str(None, "TPU address for --strategy=tpu (name, grpc://host:port, local).")
    multi_worker_timeout: int = _int(600, "Seconds a multi-worker process waits for every "
                                     "worker in TF_CONFIG to start before it stops, naming the "
                                     "ones missing.", low=1)
    eval_batch_size: int = _batch(256, "Batch size for evaluation.")
    select_on_val: bool = _bool(False, "Evaluate on the validation split after every "
                                "--log_every steps and keep the best (never the test split); "
                                "else keep the final weights, as the paper does.")
    max_nonfinite_steps: int = _int(20, "Stop the run after this many steps in a row with a "
                                    "non-finite loss or gradient (each one is skipped).", low=1)

    # --- the networks ------------------------------------------------------------------------
    model: str = _str("mlp", "Network for teacher and student (see mpl_tf/models).",
                      registry="model")
    mlp_hidden: tuple = _field((8, 8), Spec("ints", "Hidden layer widths of the MLP.", low=1,
                                               high=_MAX_MLP_LAYERS))
    mlp_activation: str = _str("sigmoid", "Activation of the MLP's hidden layers.",
                               registry="activation")
    mlp_init_scale: float = _float(0.1, "MLP weights and biases start U(-scale, scale).",
                                   low_open=True)
    dropout_rate: float = _fraction(0.0, "Dropout before the classifier (released: 0.2 CIFAR).")
    batch_norm_decay: float = _fraction(0.99, "Batch-norm moving-average decay (momentum).")
    batch_norm_epsilon: float = _float(1e-3, "Batch-norm epsilon.", low_open=True)

    # --- data: source, splits, views -----------------------------------------------------------
    label_fraction: float = _float(0.0, "Fraction of the training set that is labeled, in "
                                   "(0, 1]; 0 means use --num_labeled.", high=1.0,
                                   low_open=True, off=0.0)
    num_val: int = _int(0, "Validation examples held out of the training set for model "
                        "selection (0: the dataset's default).")
    unlabeled_excludes_labeled: bool = _bool(False, "Leave the labeled examples out of the "
                                             "unlabeled pool (the released code keeps them in).")
    extra_unlabeled: bool = _bool(False, "Add the dataset's extra split to the unlabeled pool "
                                  "(svhn_cropped: its 531k `extra` images).")
    data_dir: str = _path(None, "TFDS data directory.")
    manual_dir: str = _path(None, "TFDS manual download directory (ImageNet tars).")
    image_size: int = _image_pixels(0, "Training image size; 0 keeps the dataset's own (224 "
                                    "for ImageNet). At most 8x the dataset's largest side.")
    uda_ratio: int = _int(0, "Unlabeled batch = uda_ratio x labeled batch; 0 means use "
                          "--unlabeled_batch_size.", high=MAX_UDA_RATIO,
                          why="the paper's ratio is 7")
    augment_magnitude: float = _float(16.0, "RandAugment magnitude on the released code's scale "
                                      "(levels out of 10; 16 extrapolates, as released for "
                                      "CIFAR; at most 100).", high=MAX_MAGNITUDE)
    cutout_size: int = _image_pixels(16, "Side of the cutout square in the strong view "
                                     "(at most the image's side); 0: none.")
    skip_corrupt_images: bool = _bool(False, "Skip unreadable image files (with a warning) "
                                      "instead of failing.")
    cache_dir: str = _path(None, "folder:PATH datasets: keep the decoded images here, so a "
                           "later run on the unchanged folder decodes nothing (keyed by every "
                           "file's path, size and mtime and --image_size).")
    swap_label_pairs: str = _str(None, "Class pairs whose labels are swapped in the labeled "
                                 "training set, e.g. 0-6,2-4 (a wrong teacher for the feedback "
                                 "test); validation, test and hidden labels stay true.")
    fashion_mnist_dir: str = _path(None, "--dataset=fashion_mnist: the directory of its four "
                                   "IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                   "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each may be "
                                   ".gz); unset: /usr/share/datasets/fashion-mnist if complete, "
                                   "else TFDS in --data_dir.")

    # --- batches and optimisation (batch sizes are global, over all replicas) -----------------
    labeled_batch_size: int = _batch(12, "Global labeled batch size B (at most the labeled "
                                     "examples).")
    unlabeled_batch_size: int = _batch(64, "Global unlabeled batch size U (at most the "
                                       "unlabeled pool).")
    teacher_lr: float = _float(0.1, "Teacher learning rate (peak, before any schedule); also "
                               "a one-network method's while --network_lr is 0; 0 freezes MPL's "
                               "teacher.", low_open=True, off=0.0)
    student_lr: float = _float(0.1, "Student learning rate (peak, before any schedule).",
                               low_open=True)
    momentum: float = _fraction(0.0, "SGD momentum (TF1 semantics; 0 is plain SGD).")
    nesterov: bool = _bool(False, "Nesterov momentum.")
    weight_decay: float = _float(0.0, "Added as wd*w to the gradient of non-BN variables.")
    grad_clip_norm: float = _float(0.0, "Clip gradients by this global norm; 0 turns it off.")
    lr_schedule: str = _enum("constant", LR_SCHEDULES, "Learning-rate decay after warmup.")
    teacher_warmup_steps: int = _int(0, "Linear warmup steps of the teacher's lr (and a "
                                     "one-network method's while --network_warmup_steps is "
                                     "-1).")
    network_lr: float = _float(0.0, "Learning rate (peak, before any schedule) of a "
                               "one-network method (every method but mpl: uda, supervised, "
                               "...); 0: --teacher_lr's value, which set it before this flag "
                               "existed.", low_open=True, off=0.0)
    network_warmup_steps: int = _int(-1, "Linear warmup steps of a one-network method's lr; "
                                     "-1: --teacher_warmup_steps' value.", off=-1)
    student_warmup_steps: int = _int(0, "Linear warmup steps of the student's lr.")
    student_wait_steps: int = _int(0, "Steps the student's lr stays 0 at the start.")
    ema_decay: float = _fraction(0.0, "Decay of the EMA of the trained network (student) that is "
                                 "evaluated and served; 0 serves the network itself.")
    ema_start_step: int = _int(0, "Step the EMA starts averaging at.")
    label_smoothing: float = _fraction(0.0, "Smoothing of the student's pseudo-label targets and "
                                       "the teacher's supervised targets.")

    # --- Meta Pseudo Labels ------------------------------------------------------------------
    label_type: str = _enum("sampled", None, "Pseudo labels the student learns from "
                            "(mpl_tf/method/pseudo_labels): sampled from the teacher (paper), "
                            "its argmax, or its soft distribution (released code).",
                            registry="label_type")
    feedback: str = _enum("taylor", None, "Teacher feedback (mpl_tf/method/feedback): taylor "
                          "(old minus new labeled loss), dot (student lr times the product of "
                          "the two gradients), exact (differentiate through the student's step; "
                          "soft labels), none.", registry="feedback")
    feedback_sign: str = _enum("paper", FEEDBACK_SIGNS, "paper: h = old - new labeled loss (eq. "
                               "12); released: new - old, as the released code writes it.")
    feedback_forwards: str = _enum("common", None, "How the student's labeled loss is measured "
                                   "before and after its step (mpl_tf/method/feedback/"
                                   "forwards.py says what each does).",
                                   registry="feedback_forwards")
    feedback_baseline_decay: float = _fraction(0.0, "Decay of the moving-average baseline "
                                               "subtracted from h; 0 turns the baseline off.")
    feedback_weight: float = _float(1.0, "Weight of the feedback term in the teacher's loss.")
    teacher_supervised_weight: float = _float(1.0, "Weight of the supervised loss in the "
                                              "teacher's objective (MPL's teacher, the UDA "
                                              "control); with --uda_weight=0, 0 leaves MPL's "
                                              "teacher to the feedback alone.")
    teacher_init: str = _path(None, "A finished run's directory: the teacher (MPL) or the network "
                              "(supervised, uda, fixmatch) starts from its served network, which "
                              "must have the same --model, classes and input shape.")

    # --- finetuning, the teacher's UDA objective and the views -------------------------------
    finetune_steps: int = _int(0, "Steps of finetuning the served network (the EMA student) on "
                               "labeled data after training; 0: no finetuning.")
    finetune_lr: float = _float(1e-5, "Finetuning learning rate (constant; paper: 1e-5).",
                                low_open=True)
    finetune_batch_size: int = _batch(512, "Finetuning batch size (paper: 512; at most the "
                                      "labeled examples).")
    uda_weight: float = _float(0.0, "Weight of the teacher's consistency loss; 0 turns it off.")
    uda_temperature: float = _float(0.7, "Temperature that sharpens the weak-view targets.",
                                    low_open=True)
    uda_threshold: float = _fraction(0.6, "Confidence the sharpened target needs to count.",
                                     high_open=False)
    uda_ramp_steps: int = _int(0, "Steps of the consistency weight's linear ramp.")
    weak_noise: float = _float(0.1, "Two Moons weak view: std of Gaussian input noise.")
    strong_noise: float = _float(0.2, "Two Moons strong view: std of Gaussian input noise.")

    # --- FixMatch (--method=fixmatch) -----------------------------------------------------------
    fixmatch_threshold: float = _fraction(0.95, "The probability a weak-view prediction needs "
                                          "for its argmax to count as a pseudo label (keep it "
                                          "below 1 - s + s/K with --label_smoothing=s, which "
                                          "caps the network's confidence).", high_open=False)
    fixmatch_weight: float = _float(1.0, "Weight of the loss on the pseudo labels.")

    @classmethod
    def from_flags(cls, flag_values=flags.FLAGS):
        """Reads every field from the parsed absl flags of the same name (an unset string flag
        is the field's default)."""
        values = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)}
        values = {name: cls.__dataclass_fields__[name].default if value is None else value
                  for name, value in values.items()}
        values["mlp_hidden"] = tuple(values["mlp_hidden"])
        return cls(**values)

    @classmethod
    def from_flagfile(cls, path, **overrides):
        """The config a flagfile (a recipe) describes, with `overrides`, validated."""
        return cls.from_args([f"--flagfile={path}"]).replace(**overrides).validate()

    @classmethod
    def from_args(cls, args):
        """The config command-line flags `args` give (not validated); read with flags of its
        own, so the process's flags are left alone."""
        flag_values = flags.FlagValues()
        define_flags(flag_values)
        flag_values(["mpl_tf", *args])
        return cls.from_flags(flag_values)

    @classmethod
    def from_json(cls, path):
        """The config a run dumped to model_dir/config.json; its model_dir is where that file
        is now (a run directory may be copied or moved: nothing may follow the recorded path)."""
        with open(path) as f:
            values = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values["model_dir"] = os.path.dirname(os.path.abspath(path))
        values["mlp_hidden"] = tuple(values.get("mlp_hidden", cls.mlp_hidden))
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def network_schedule(self):
        """(peak lr, warmup steps) of a one-network method's optimizer: --network_lr and
        --network_warmup_steps, each the teacher's flag when unset (0 and -1)."""
        warmup = (self.teacher_warmup_steps if self.network_warmup_steps == -1
                  else self.network_warmup_steps)
        return self.network_lr or self.teacher_lr, warmup

    @property
    def global_unlabeled_batch_size(self):
        """U: `uda_ratio` x B when uda_ratio is set, else --unlabeled_batch_size."""
        if self.uda_ratio:
            return self.uda_ratio * self.labeled_batch_size
        return self.unlabeled_batch_size

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def validate(self):
        """Raises ConfigError for the first value that cannot run; returns self otherwise.

        Each field alone first (its Spec), then the fields together, then the names that must
        fields that name a registry's entry are checked against the registries by
        `cli.check_registered`, which the commands call after this."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            problem = field.metadata["spec"].problem(value)
            if problem:
                raise ConfigError(f"--{field.name}={flag_text(value)} {problem}")
        self._validate_together()
        self._validate_conflicts()
        return self

    def finetuning(self, num_replicas=1):
        """The supervised config that finetunes the served network: constant lr, no EMA, no
        weight decay or smoothing, one epoch; unlabeled batches are unused, so minimal."""
        return self.replace(
            method="supervised", ema_decay=0.0, network_lr=self.finetune_lr,
            network_warmup_steps=0, lr_schedule="constant", weight_decay=0.0,
            label_smoothing=0.0, labeled_batch_size=self.finetune_batch_size,
            train_steps=self.finetune_steps, log_every=self.finetune_steps, checkpoint_every=0,
            steps_per_execution=math.gcd(self.steps_per_execution, self.finetune_steps),
            uda_ratio=0, unlabeled_batch_size=num_replicas, teacher_init=None)

    def _validate_together(self):
        """Step counts that must divide each other, and settings that need another one."""
        on_tpu = self.strategy == "tpu" or (self.strategy == "auto" and self.tpu)
        if self.precision == "mixed_float16" and on_tpu:
            raise ConfigError("--precision=mixed_float16 does not run on TPUs; use "
                              "--precision=bfloat16")
        steps_per_epoch = min(self.log_every, self.train_steps)
        if self.train_steps % steps_per_epoch:
            raise ConfigError(f"--train_steps={self.train_steps} must be a multiple of "
                              f"--log_every={self.log_every}")
        if steps_per_epoch % self.steps_per_execution:
            raise ConfigError(f"--steps_per_execution={self.steps_per_execution} must divide "
                              f"the steps per epoch ({steps_per_epoch})")
        if self.checkpoint_every % steps_per_epoch:
            raise ConfigError(f"--checkpoint_every={self.checkpoint_every} must be a "
                              f"non-negative multiple of --log_every={self.log_every}")
        if self.mode == "finetune" and not self.finetune_steps:
            raise ConfigError("--mode=finetune needs --finetune_steps > 0")

    def _validate_conflicts(self):
        """Two flags that would each decide the same thing: refused, rather than one silently
        winning (and the records then saying what was not done)."""
        if self.label_fraction and self.num_labeled != _default("num_labeled"):
            raise ConfigError(f"--label_fraction={self.label_fraction:g} and "
                              f"--num_labeled={self.num_labeled} both set the number of labeled "
                              "examples; pass one of them")
        if self.uda_ratio and self.unlabeled_batch_size != _default("unlabeled_batch_size"):
            raise ConfigError(f"--uda_ratio={self.uda_ratio} and --unlabeled_batch_size="
                              f"{self.unlabeled_batch_size} both set the unlabeled batch; pass "
                              "one of them")
        if self.tpu and self.strategy not in ("auto", "tpu"):
            raise ConfigError(f"--tpu={self.tpu} is for --strategy=tpu (or auto), not "
                              f"--strategy={self.strategy}")
        if self.ema_start_step and not self.ema_decay:
            raise ConfigError(f"--ema_start_step={self.ema_start_step} needs --ema_decay > 0 "
                              "(there is no EMA to start)")


def flag_text(value):
    """A field's value as its flag is written (MLP widths comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def _default(name):
    return Config.__dataclass_fields__[name].default


class _WidthsParser(flags.ListParser):
    """Comma-separated integers: a word that is not one fails as the flag's parse error."""

    def parse(self, argument):
        words = super().parse(argument)
        try:
            return [int(word) for word in words]
        except (TypeError, ValueError):
            raise ValueError(f"{_KIND_NAMES['ints']} expected, got {argument!r}") from None

    def flag_type(self):
        return "comma separated list of integers"


def define_flags(flag_values, registries=None):
    """Defines one absl flag per Config field: its name, its default (an empty string as an
    unset flag), its help text and, for enums, its choices (a registry field's from
    `registries`, {registry: names}; without them it is a string flag, checked later)."""
    for field in dataclasses.fields(Config):
        spec, name = field.metadata["spec"], field.name
        default = field.default if field.default != "" else None
        if spec.kind == "ints":
            flags.DEFINE(_WidthsParser(), name, ",".join(map(str, default)), spec.help,
                         flag_values, serializer=flags.CsvListSerializer(","))
        elif spec.kind == "enum" and (spec.choices or spec.registry in (registries or {})):
            choices = spec.choices or registries[spec.registry]
            flags.DEFINE_enum(name, default, choices, spec.help, flag_values=flag_values)
        else:
            define = {"str": flags.DEFINE_string, "path": flags.DEFINE_string,
                      "int": flags.DEFINE_integer, "float": flags.DEFINE_float,
                      "bool": flags.DEFINE_bool, "enum": flags.DEFINE_string}[spec.kind]
            define(name, default, spec.help, flag_values=flag_values)
