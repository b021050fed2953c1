"""Every knob of a run: the absl flag definitions and the frozen `Config` built from them.

Flags are grouped by what they control; `Config.validate` checks every value before anything is
built, so a bad flag fails in one line before training starts.
"""

import dataclasses
import json
import math

from absl import flags

METHODS = ("mpl", "uda", "supervised")
LABEL_TYPES = ("sampled", "argmax", "soft")
FEEDBACKS = ("taylor", "dot", "exact", "none")
FEEDBACK_SIGNS = ("paper", "released")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
MODES = ("train", "finetune")
MODELS = ("mlp", "cnn", "wrn-28-2", "wrn-28-8", "resnet-50")
PRECISIONS = ("float32", "bfloat16", "mixed_float16")


class ConfigError(ValueError):
    """A flag value that cannot run; its message is one line naming the value and the valid ones."""


class TrainingError(RuntimeError):
    """A run that had to stop (e.g. diverged); its message is one line saying why and what is
    left in the run directory."""


# --- the run ---------------------------------------------------------------------------------
flags.DEFINE_string("model_dir", None, "Run directory: config, logs, results.json, figures.")
flags.DEFINE_enum("mode", "train", MODES, "train: train (then finetune if --finetune_steps); "
                  "finetune: finetune the served network of a finished run in --model_dir.")
flags.DEFINE_enum("method", "mpl", METHODS, "mpl: teacher + student; uda: the teacher's own "
                  "objective alone; supervised: labeled data only.")
flags.DEFINE_string("dataset", "two_moons", "Data source (see mpl_tf/data/sources.py).")
flags.DEFINE_integer("num_labeled", 12, "Labeled examples, class-balanced, chosen by split_seed.")
flags.DEFINE_integer("split_seed", 0, "Seed of the labeled subset (same for every method).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, augmentation and label sampling.")
flags.DEFINE_integer("train_steps", 10000, "Training steps (teacher updates).")
flags.DEFINE_integer("log_every", 1000, "Steps per Keras epoch: progress bar, CSV and TensorBoard.")
flags.DEFINE_integer("checkpoint_every", 0, "Steps between full-state checkpoints (a multiple "
                     "of --log_every; 0 means every --log_every steps). Rerunning the same "
                     "command resumes from the newest one.")
flags.DEFINE_integer("steps_per_execution", 1, "Steps run inside one tf.function call.")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "tf.distribute strategy (auto: TPU with "
                  "--tpu, multi_worker with a multi-worker TF_CONFIG, mirrored with several GPUs, "
                  "else default). Batch sizes are global, split evenly over replicas.")
flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA (one device or "
                  "TPU; on CPU it was slower here, see benchmarks/results/step_benchmark.md).")
flags.DEFINE_enum("precision", "float32", PRECISIONS, "Compute precision of the networks: "
                  "bfloat16 and mixed_float16 keep float32 variables, inputs and logits and "
                  "compute the layers in 16 bits (mixed_float16 with dynamic loss scaling for "
                  "both optimizers; bfloat16 for TPUs and recent CPUs, float16 for GPUs).")
flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu (name, grpc://host:port, local).")
flags.DEFINE_integer("eval_batch_size", 256, "Batch size for evaluation.")
flags.DEFINE_bool("select_on_val", False, "Evaluate on the validation split after every "
                  "--log_every steps and keep the best (never the test split); else keep the "
                  "final weights, as the paper does.")
flags.DEFINE_integer("max_nonfinite_steps", 20, "Stop the run after this many steps in a row "
                     "with a non-finite loss or gradient (each one is skipped).")

# --- the networks ----------------------------------------------------------------------------
flags.DEFINE_string("model", "mlp", "Network for teacher and student (see mpl_tf/models).")
flags.DEFINE_list("mlp_hidden", ["8", "8"], "Hidden layer widths of the MLP.")
flags.DEFINE_string("mlp_activation", "sigmoid", "Activation of the MLP's hidden layers.")
flags.DEFINE_float("mlp_init_scale", 0.1, "MLP weights and biases start U(-scale, scale).")
flags.DEFINE_float("dropout_rate", 0.0, "Dropout before the classifier (released: 0.2 CIFAR).")
flags.DEFINE_float("batch_norm_decay", 0.99, "Batch-norm moving-average decay (momentum).")
flags.DEFINE_float("batch_norm_epsilon", 1e-3, "Batch-norm epsilon.")

# --- data: source, splits, views ------------------------------------------------------------
flags.DEFINE_float("label_fraction", 0.0, "Fraction of the training set that is labeled, in "
                   "(0, 1]; 0 means use --num_labeled.")
flags.DEFINE_integer("num_val", 0, "Validation examples held out of the training set for model "
                     "selection (0: the dataset's default).")
flags.DEFINE_bool("unlabeled_excludes_labeled", False, "Leave the labeled examples out of the "
                  "unlabeled pool (the released code keeps them in).")
flags.DEFINE_bool("extra_unlabeled", False, "Add the dataset's extra split to the unlabeled "
                  "pool (svhn_cropped: its 531k `extra` images).")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_string("manual_dir", None, "TFDS manual download directory (ImageNet tars).")
flags.DEFINE_integer("image_size", 0, "Training image size; 0 keeps the dataset's own (224 "
                     "for ImageNet).")
flags.DEFINE_integer("uda_ratio", 0, "Unlabeled batch = uda_ratio x labeled batch; 0 means use "
                     "--unlabeled_batch_size.")
flags.DEFINE_float("augment_magnitude", 16.0, "RandAugment magnitude on the released code's "
                   "scale (levels out of 10; 16 extrapolates, as released for CIFAR).")
flags.DEFINE_integer("cutout_size", 16, "Side of the cutout square in the strong view; 0: none.")
flags.DEFINE_bool("skip_corrupt_images", False, "Skip unreadable image files (with a warning) "
                  "instead of failing.")
# folder:PATH datasets (mpl_tf/data/folder.py)
flags.DEFINE_string("cache_dir", None, "folder:PATH datasets: keep the decoded images here, so "
                    "a later run on the unchanged folder decodes nothing (keyed by every "
                    "file's path, size and mtime and --image_size).")

# --- batches and optimisation (batch sizes are global, over all replicas) ---------------------
flags.DEFINE_integer("labeled_batch_size", 12, "Global labeled batch size B.")
flags.DEFINE_integer("unlabeled_batch_size", 64, "Global unlabeled batch size U.")
flags.DEFINE_float("teacher_lr", 0.1, "Teacher learning rate (peak, before any schedule).")
flags.DEFINE_float("student_lr", 0.1, "Student learning rate (peak, before any schedule).")
flags.DEFINE_float("momentum", 0.0, "SGD momentum (TF1 semantics; 0 is plain SGD).")
flags.DEFINE_bool("nesterov", False, "Nesterov momentum.")
flags.DEFINE_float("weight_decay", 0.0, "Added as wd*w to the gradient of non-BN variables.")
flags.DEFINE_float("grad_clip_norm", 0.0, "Clip gradients by this global norm; 0 turns it off.")
flags.DEFINE_enum("lr_schedule", "constant", LR_SCHEDULES, "Learning-rate decay after warmup.")
flags.DEFINE_integer("teacher_warmup_steps", 0, "Linear warmup steps of the teacher's lr.")
flags.DEFINE_integer("student_warmup_steps", 0, "Linear warmup steps of the student's lr.")
flags.DEFINE_integer("student_wait_steps", 0, "Steps the student's lr stays 0 at the start.")
flags.DEFINE_float("ema_decay", 0.0, "Decay of the EMA of the trained network (student) that "
                   "is evaluated and served; 0 serves the network itself.")
flags.DEFINE_integer("ema_start_step", 0, "Step the EMA starts averaging at.")
flags.DEFINE_float("label_smoothing", 0.0, "Smoothing of the student's pseudo-label targets "
                   "and the teacher's supervised targets.")

# --- Meta Pseudo Labels --------------------------------------------------------------------
flags.DEFINE_enum("label_type", "sampled", LABEL_TYPES, "Pseudo labels the student learns from: "
                  "sampled from the teacher (paper), its argmax, or its soft distribution "
                  "(released code).")
flags.DEFINE_enum("feedback", "taylor", FEEDBACKS, "Teacher feedback: taylor (old minus new "
                  "labeled loss), dot (student lr times the product of the two gradients), exact "
                  "(differentiate through the student's step; soft labels), none.")
flags.DEFINE_enum("feedback_sign", "paper", FEEDBACK_SIGNS, "paper: h = old - new labeled loss "
                  "(eq. 12); released: new - old, as the released code writes it.")
flags.DEFINE_float("feedback_baseline_decay", 0.0, "Decay of the moving-average baseline "
                   "subtracted from h; 0 turns the baseline off.")
flags.DEFINE_float("feedback_weight", 1.0, "Weight of the feedback term in the teacher's loss.")

# --- the teacher's UDA objective and the views ---------------------------------------------
flags.DEFINE_integer("finetune_steps", 0, "Steps of finetuning the served network (the EMA "
                     "student) on labeled data after training; 0: no finetuning.")
flags.DEFINE_float("finetune_lr", 1e-5, "Finetuning learning rate (constant; paper: 1e-5).")
flags.DEFINE_integer("finetune_batch_size", 512, "Finetuning batch size (paper: 512).")

flags.DEFINE_float("uda_weight", 0.0, "Weight of the teacher's consistency loss; 0 turns it off.")
flags.DEFINE_float("uda_temperature", 0.7, "Temperature that sharpens the weak-view targets.")
flags.DEFINE_float("uda_threshold", 0.6, "Confidence the sharpened target needs to count.")
flags.DEFINE_integer("uda_ramp_steps", 0, "Steps of the consistency weight's linear ramp.")
flags.DEFINE_float("weak_noise", 0.1, "Two Moons weak view: std of Gaussian input noise.")
flags.DEFINE_float("strong_noise", 0.2, "Two Moons strong view: std of Gaussian input noise.")


@dataclasses.dataclass(frozen=True)
class Config:
    """One run's settings; dumped to model_dir/config.json."""

    model_dir: str = ""
    mode: str = "train"
    method: str = "mpl"
    dataset: str = "two_moons"
    num_labeled: int = 12
    split_seed: int = 0
    seed: int = 0
    train_steps: int = 10000
    log_every: int = 1000
    checkpoint_every: int = 0
    steps_per_execution: int = 1
    strategy: str = "auto"
    tpu: str = None
    jit_compile: bool = False
    precision: str = "float32"
    eval_batch_size: int = 256
    select_on_val: bool = False
    max_nonfinite_steps: int = 20
    model: str = "mlp"
    mlp_hidden: tuple = (8, 8)
    mlp_activation: str = "sigmoid"
    mlp_init_scale: float = 0.1
    dropout_rate: float = 0.0
    batch_norm_decay: float = 0.99
    batch_norm_epsilon: float = 1e-3
    label_fraction: float = 0.0
    num_val: int = 0
    unlabeled_excludes_labeled: bool = False
    extra_unlabeled: bool = False
    data_dir: str = None
    manual_dir: str = None
    image_size: int = 0
    uda_ratio: int = 0
    augment_magnitude: float = 16.0
    cutout_size: int = 16
    skip_corrupt_images: bool = False
    cache_dir: str = None  # folder:PATH datasets
    labeled_batch_size: int = 12
    unlabeled_batch_size: int = 64
    teacher_lr: float = 0.1
    student_lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0
    lr_schedule: str = "constant"
    teacher_warmup_steps: int = 0
    student_warmup_steps: int = 0
    student_wait_steps: int = 0
    ema_decay: float = 0.0
    ema_start_step: int = 0
    label_smoothing: float = 0.0
    label_type: str = "sampled"
    feedback: str = "taylor"
    feedback_sign: str = "paper"
    feedback_baseline_decay: float = 0.0
    feedback_weight: float = 1.0
    finetune_steps: int = 0
    finetune_lr: float = 1e-5
    finetune_batch_size: int = 512
    uda_weight: float = 0.0
    uda_temperature: float = 0.7
    uda_threshold: float = 0.6
    uda_ramp_steps: int = 0
    weak_noise: float = 0.1
    strong_noise: float = 0.2

    @classmethod
    def from_flags(cls, flag_values=flags.FLAGS):
        """Reads every field from the parsed absl flags of the same name."""
        values = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)}
        values["mlp_hidden"] = tuple(int(w) for w in values["mlp_hidden"])
        values["model_dir"] = values["model_dir"] or ""
        return cls(**values)

    @classmethod
    def from_json(cls, path):
        """The config a run dumped to model_dir/config.json."""
        with open(path) as f:
            values = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values["mlp_hidden"] = tuple(values.get("mlp_hidden", cls.mlp_hidden))
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def global_unlabeled_batch_size(self):
        """U: `uda_ratio` x B when uda_ratio is set, else --unlabeled_batch_size."""
        if self.uda_ratio:
            return self.uda_ratio * self.labeled_batch_size
        return self.unlabeled_batch_size

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def validate(self):
        """Raises ConfigError for the first value that cannot run; returns self otherwise."""
        _one_of("mode", self.mode, MODES)
        _one_of("method", self.method, METHODS)
        _one_of("label_type", self.label_type, LABEL_TYPES)
        _one_of("feedback", self.feedback, FEEDBACKS)
        _one_of("feedback_sign", self.feedback_sign, FEEDBACK_SIGNS)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("strategy", self.strategy, STRATEGIES)
        _one_of("model", self.model, MODELS)
        _one_of("precision", self.precision, PRECISIONS)
        on_tpu = self.strategy == "tpu" or (self.strategy == "auto" and self.tpu)
        if self.precision == "mixed_float16" and on_tpu:
            raise ConfigError("--precision=mixed_float16 does not run on TPUs; use "
                              "--precision=bfloat16")
        for name in ("train_steps", "log_every", "steps_per_execution", "eval_batch_size",
                     "labeled_batch_size", "unlabeled_batch_size", "num_labeled",
                     "finetune_batch_size", "max_nonfinite_steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name}={getattr(self, name)} must be a positive integer")
        for name in ("teacher_lr", "student_lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name}={getattr(self, name)} must be > 0")
        for name in ("teacher_warmup_steps", "student_warmup_steps", "student_wait_steps",
                     "uda_ramp_steps", "ema_start_step", "finetune_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}={getattr(self, name)} must be >= 0")
        for name in ("weight_decay", "grad_clip_norm", "uda_weight", "weak_noise",
                     "strong_noise", "feedback_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}={getattr(self, name)} must be >= 0")
        _in_range("momentum", self.momentum, 0.0, 1.0, closed_high=False)
        _in_range("label_smoothing", self.label_smoothing, 0.0, 1.0, closed_high=False)
        _in_range("feedback_baseline_decay", self.feedback_baseline_decay, 0.0, 1.0,
                  closed_high=False)
        _in_range("uda_threshold", self.uda_threshold, 0.0, 1.0, closed_high=True)
        _in_range("dropout_rate", self.dropout_rate, 0.0, 1.0, closed_high=False)
        _in_range("ema_decay", self.ema_decay, 0.0, 1.0, closed_high=False)
        _in_range("batch_norm_decay", self.batch_norm_decay, 0.0, 1.0, closed_high=False)
        if self.label_fraction and not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"--label_fraction={self.label_fraction} must be in (0, 1]")
        for name in ("num_val", "image_size", "uda_ratio", "cutout_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}={getattr(self, name)} must be >= 0")
        if self.cache_dir is not None and not self.dataset.startswith("folder:"):
            raise ConfigError(f"--cache_dir applies to --dataset=folder:PATH only (got "
                              f"--dataset={self.dataset})")
        if self.batch_norm_epsilon <= 0:
            raise ConfigError(f"--batch_norm_epsilon={self.batch_norm_epsilon} must be > 0")
        if not self.uda_temperature > 0:
            raise ConfigError(f"--uda_temperature={self.uda_temperature} must be > 0")
        if not self.mlp_hidden or min(self.mlp_hidden) <= 0:
            raise ConfigError(f"--mlp_hidden={','.join(map(str, self.mlp_hidden))} must list "
                              "positive widths")
        steps_per_epoch = min(self.log_every, self.train_steps)
        if self.train_steps % steps_per_epoch:
            raise ConfigError(f"--train_steps={self.train_steps} must be a multiple of "
                              f"--log_every={self.log_every}")
        if steps_per_epoch % self.steps_per_execution:
            raise ConfigError(f"--steps_per_execution={self.steps_per_execution} must divide "
                              f"the steps per epoch ({steps_per_epoch})")
        if self.checkpoint_every < 0 or self.checkpoint_every % steps_per_epoch:
            raise ConfigError(f"--checkpoint_every={self.checkpoint_every} must be a "
                              f"non-negative multiple of --log_every={self.log_every}")
        if self.mode == "finetune" and not self.finetune_steps:
            raise ConfigError("--mode=finetune needs --finetune_steps > 0")
        if self.method == "mpl":
            self._validate_feedback()
        return self

    def finetuning(self, num_replicas=1):
        """The supervised config that finetunes the served network: constant lr, no EMA, no
        weight decay or smoothing, one epoch; unlabeled batches are unused, so minimal."""
        return self.replace(
            method="supervised", ema_decay=0.0, teacher_lr=self.finetune_lr,
            teacher_warmup_steps=0, lr_schedule="constant", weight_decay=0.0,
            label_smoothing=0.0, labeled_batch_size=self.finetune_batch_size,
            train_steps=self.finetune_steps, log_every=self.finetune_steps, checkpoint_every=0,
            steps_per_execution=math.gcd(self.steps_per_execution, self.finetune_steps),
            uda_ratio=0, unlabeled_batch_size=num_replicas)

    def _validate_feedback(self):
        """The label type decides which feedback estimators have a gradient at all."""
        if self.feedback == "exact" and self.label_type != "soft":
            raise ConfigError(f"--feedback=exact needs --label_type=soft (got "
                              f"--label_type={self.label_type}): a hard label has no gradient "
                              "to differentiate through")
        if self.feedback in ("taylor", "dot") and self.label_type == "soft":
            raise ConfigError(f"--feedback={self.feedback} needs --label_type=sampled or argmax "
                              "(got soft): CE(stop_grad(p), logits) has zero gradient, the "
                              "released code's inert term; use --feedback=exact for soft labels")
        if self.feedback == "exact" and self.feedback_sign != "paper":
            raise ConfigError("--feedback_sign applies to taylor and dot only; --feedback=exact "
                              "takes the true derivative (use --feedback_sign=paper)")


def _one_of(name, value, valid):
    if value not in valid:
        raise ConfigError(f"--{name}={value} is not valid; valid values: {', '.join(valid)}")


def _in_range(name, value, low, high, closed_high):
    ok = low <= value <= high if closed_high else low <= value < high
    if not ok:
        bracket = "]" if closed_high else ")"
        raise ConfigError(f"--{name}={value} must be in [{low:g}, {high:g}{bracket}")
