"""Can the feedback alone put a wrong teacher right? Fashion-MNIST, 400 labels
(flags/fashion_mnist.cfg).

    python -m benchmarks.fashion_mnist_feedback_test --seeds="0 1 2" \\
        --out=benchmarks/results/fashion_mnist_feedback_test

For each seed, a supervised network is first trained on the labeled set with two pairs of
classes swapped (--swap_label_pairs, default 1-7,3-8: Trouser/Sneaker and Dress/Bag, classes
nothing else confuses), so it calls trousers sneakers and so on. Then MPL runs start their
teacher from it (--teacher_init) with no supervised and no UDA term (--teacher_supervised_weight=0
--uda_weight=0): the teacher's only signal is the feedback, while the student learns from the
teacher's pseudo labels and is measured on the true labeled set, so a working feedback should
lower the teacher's probability of the swapped labels and raise its accuracy on those classes.
Arms: the teacher frozen (--teacher_lr=0, the baseline), taylor feedback at weights 1, 10 and
100, the exact feedback (soft labels) and taylor at weights 10 and 100 with the sign flipped
(--feedback_sign=released, which should make it worse, if anything).

Measured: the teacher's accuracy on the test images of the swapped classes and of the others,
and how many swapped-class images it calls their partner class, at the start (the pretrained
network) and at every checkpoint the run keeps (its last three log windows); the pseudo-label
accuracy of every log window (all classes, on the strong views the student trains on); the
student's test accuracy; the feedback diagnostics. Resumable across sessions like the ablation
(`ablation.run_recorded`); the pretrained networks are retrained in a fresh checkout only if an
arm of their seed is still to run.
"""

import os

import numpy as np
from absl import flags

from benchmarks import ablation
from mpl_tf.data import fashion_mnist, label_swap
from mpl_tf.errors import ConfigError

RECIPE = "flags/fashion_mnist.cfg"
OUT = "benchmarks/results/fashion_mnist_feedback_test"
RUNS = "benchmarks/runs/fashion_mnist_feedback"
PRETRAIN = "pretrained on swapped labels"
ALONE = dict(teacher_supervised_weight=0.0, uda_weight=0.0, finetune_steps=0)
ARMS = (
    ("teacher frozen (lr 0)", dict(teacher_lr=0.0, **ALONE)),
    ("taylor, weight 1", dict(**ALONE)),
    ("taylor, weight 10", dict(feedback_weight=10.0, **ALONE)),
    ("taylor, weight 100", dict(feedback_weight=100.0, **ALONE)),
    ("exact (soft labels), weight 1", dict(feedback="exact", label_type="soft",
                                           feedback_baseline_decay=0.0, **ALONE)),
    ("taylor, weight 10, sign flipped", dict(feedback_weight=10.0, feedback_sign="released",
                                             **ALONE)),
    ("taylor, weight 100, sign flipped", dict(feedback_weight=100.0, feedback_sign="released",
                                              **ALONE)),
)

flags.DEFINE_string("swap", "1-7,3-8", "The class pairs the pretrained teacher has swapped.")


def run(asked):
    """Trains, for the seeds `asked` (an `ablation.Table`), the pretrained network and the arms
    not recorded yet, and writes the table after every run; the recorded runs of other seeds
    stay in the JSON."""
    base, runs_dir = asked.base, os.path.abspath(asked.runs_dir)
    _check_swap(flags.FLAGS.swap, base.dataset)
    pretrain = _pretrain()
    # the arms of every seed differ only in their teacher_init's name: one seed's stand for all
    asked.check([pretrain, *_arms(runs_dir, asked.seeds[0])])
    kept = recorded_runs(ablation.read_recorded(asked.out + ".json"), base, runs_dir)
    runs = {}

    def write(new_runs, show=False):
        runs.update({(r["variant"], r["seed"]): r for r in new_runs})
        table(asked.out, asked.seeds, {**kept, **runs}, show=show)

    for seed in asked.seeds:
        waiting = [arm for arm in _arms(runs_dir, seed) if (arm[0], seed) not in kept]
        if not waiting:
            continue
        # the arms need the pretrained network itself: read back when it is in runs_dir with
        # this config, else (a fresh checkout, another recipe) trained
        first = kept.get((PRETRAIN, seed))
        ablation.run_variants(base, [pretrain], [seed], runs_dir)
        ablation.run_recorded(base, [pretrain], [seed], runs_dir, [first] if first else [],
                              write, measure=_measure_pretrained)
        ablation.run_recorded(base, waiting, [seed], runs_dir, [], write, measure=_measure)
    write([], show=True)


def _check_swap(swap, dataset):
    """Raises ConfigError unless --swap names class pairs (of Fashion-MNIST's classes, when
    that is the dataset), before any run directory is made for a pretraining that would fail."""
    pairs = label_swap.parse(swap, name="swap")
    if not pairs:
        raise ConfigError(f"--swap is empty: the test needs a teacher wrong on some classes; "
                          f"give class pairs, e.g. --swap={flags.FLAGS['swap'].default}")
    if dataset == fashion_mnist.NAME:
        label_swap.check_classes(pairs, len(fashion_mnist.CLASS_NAMES), dataset,
                                 f"--swap={swap}")


def _pretrain():
    """(name, overrides) of the pretraining: supervised on the labels --swap swaps."""
    return (PRETRAIN, dict(method="supervised", swap_label_pairs=flags.FLAGS.swap,
                           finetune_steps=0))


def _arms(runs_dir, seed):
    """The arms of `seed`, each starting its teacher from that seed's pretrained network."""
    teacher = os.path.join(runs_dir, f"{ablation.slug(PRETRAIN)}_seed{seed}")
    return [(name, dict(overrides, teacher_init=teacher)) for name, overrides in ARMS]


def recorded_runs(recorded, base, runs_dir):
    """{(variant, seed): record} of the `recorded` runs this recipe would train now, of every
    seed recorded (not only those asked now, so a table run for some seeds keeps the others):
    a seed's pretraining if its config matches, and then that seed's arms that match."""
    kept = {}
    for seed in sorted({r["seed"] for r in recorded}):
        config = _config(base, seed, _pretrain()[1])
        first = next((r for r in recorded if r["variant"] == PRETRAIN and r["seed"] == seed
                      and ablation.same_run(r["config"], config)), None)
        if first is not None:
            kept[(PRETRAIN, seed)] = first
            arms = _arms(runs_dir, seed)
            kept.update({(r["variant"], seed): r for r in recorded if r["seed"] == seed
                         and r["variant"] != PRETRAIN and _current(r, base, seed, arms)})
    return kept


def _config(base, seed, overrides):
    return base.replace(seed=seed, split_seed=seed, **overrides).validate()


def _current(record, base, seed, arms):
    overrides = dict(arms).get(record["variant"])
    if overrides is None:
        return False
    try:
        return ablation.same_run(record["config"], _config(base, seed, overrides))
    except ValueError:  # ConfigError: the recipe changed under it
        return False


def _measure_pretrained(config):
    """The pretrained network's accuracies on the test images (swapped classes and others)."""
    from mpl_tf.serving import export
    from mpl_tf.data import sources

    data = sources.load(config.replace(swap_label_pairs=None))
    return {"teacher_classes": {0: _class_accuracies(
        export.load_run(config.model_dir).network, data, config.swap_label_pairs)}}


def _measure(config):
    """The teacher's class accuracies at the start and at every kept checkpoint, and the
    pseudo-label accuracy of every log window."""
    import tensorflow as tf

    from mpl_tf.durable import checkpoints

    from mpl_tf.serving import export
    from mpl_tf.method.build import build_model
    from mpl_tf.data import sources
    from mpl_tf.run.training import read_csv_log

    swap = flags.FLAGS.swap
    data = sources.load(config)
    trajectory = {0: _class_accuracies(export.load_run(config.teacher_init).network, data,
                                       swap)}
    model = build_model(config, data.input_shape, data.num_classes, pixel_mean=data.pixel_mean,
                        pixel_std=data.pixel_std)
    directory = checkpoints.directory(config.model_dir, "train")
    for step in checkpoints.steps_present(directory):
        tf.train.Checkpoint(trainer=model).restore(
            os.path.join(directory, f"ckpt-{step}")).expect_partial()
        trajectory[step] = _class_accuracies(model.teacher, data, swap)
    windows = read_csv_log(os.path.join(config.model_dir, "train_log.csv"))
    return {"teacher_classes": trajectory,
            "pseudo_label_accuracy_per_window": [float(v) for v in
                                                 windows["pseudo_label_accuracy"]]}


def _class_accuracies(network, data, swap):
    """On the test images: the accuracy on the swapped classes, on the others, and the share
    of swapped-class images called their partner class."""
    from mpl_tf.data import label_swap

    partner = label_swap.mapping(label_swap.parse(swap), data.num_classes)
    predictions = np.concatenate([
        np.argmax(network(data.test_images[i:i + 1000].astype(np.float32), training=False),
                  axis=-1) for i in range(0, len(data.test_labels), 1000)])
    truth = data.test_labels
    swapped = partner[truth] != truth
    return {"swapped": float(np.mean(predictions[swapped] == truth[swapped])),
            "other": float(np.mean(predictions[~swapped] == truth[~swapped])),
            "called_partner": float(np.mean(predictions[swapped] == partner[truth][swapped]))}


def table(out, seeds, merged, show=False):
    """Writes OUT.json (the rows of `seeds`, and every run of `merged`: {(variant, seed):
    record}, whatever its seed) and OUT.md."""
    rows = []
    for name in [PRETRAIN] + [n for n, _ in ARMS]:
        records = [merged[(name, s)] for s in seeds if (name, s) in merged]
        rows.append(_row(name, records))
    payload = {"recipe": RECIPE, "seeds": seeds, "swap_label_pairs": flags.FLAGS.swap,
               "rows": rows, "runs": list(merged.values())}
    ablation.write(out, payload, _markdown(rows, seeds), show=show)


def _row(name, records):
    row = {"variant": name, "seeds": [r["seed"] for r in records]}
    first, last = [], []
    for r in records:
        steps = sorted(r.get("teacher_classes", {}), key=int)
        if steps:
            first.append(r["teacher_classes"][steps[0]])
            last.append(r["teacher_classes"][steps[-1]])
    for key in ("swapped", "called_partner", "other"):
        row[f"teacher_{key}_start"] = [c[key] for c in first]
        row[f"teacher_{key}_end"] = [c[key] for c in last]
    windows = [r["pseudo_label_accuracy_per_window"] for r in records
               if "pseudo_label_accuracy_per_window" in r]
    row["pseudo_label_accuracy_first_window"] = [w[0] for w in windows]
    row["pseudo_label_accuracy_last_window"] = [w[-1] for w in windows]
    row["student_test_accuracy"] = [r["test_accuracy"] for r in records]
    row["teacher_trajectories"] = [r.get("teacher_classes") for r in records]
    row["diagnostics"] = ablation.diagnostics(records)
    return row


def _cell(values):
    return ablation.percent(values) if values else "–"


def _markdown(rows, seeds):
    lines = [f"Fashion-MNIST feedback test, swapped pairs {flags.FLAGS.swap}, seeds "
             f"{' '.join(map(str, seeds))}: the teacher on the test images of the swapped "
             "classes, start → end (mean ± std, %).", "",
             "| arm | seeds | teacher on swapped classes | swapped called their partner | "
             "teacher on other classes | pseudo-label accuracy, first → last window | student "
             f"test | {ablation.diagnostic_headers()} |",
             "|---|---|---|---|---|---|---|" + "---|" * len(ablation.DIAGNOSTIC_COLUMNS)]
    for r in rows:
        cells = [f"{_cell(r[f'teacher_{k}_start'])} → {_cell(r[f'teacher_{k}_end'])}"
                 if r["variant"] != PRETRAIN else _cell(r[f"teacher_{k}_start"])
                 for k in ("swapped", "called_partner", "other")]
        windows = (f"{_cell(r['pseudo_label_accuracy_first_window'])} → "
                   f"{_cell(r['pseudo_label_accuracy_last_window'])}"
                   if r["pseudo_label_accuracy_first_window"] else "–")
        student = _cell(r["student_test_accuracy"]) if r["variant"] != PRETRAIN else "–"
        lines.append(f"| {r['variant']} | {' '.join(map(str, r['seeds'])) or '–'} | "
                     f"{' | '.join(cells)} | {windows} | {student} | "
                     f"{ablation.diagnostic_cells(r)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # select_on_val off: the test is about the dynamics, not a selected epoch
    ablation.main(run, RECIPE, OUT, RUNS, __doc__, select_on_val=False)
