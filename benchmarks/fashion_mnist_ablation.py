"""The ablation on Fashion-MNIST with 400 labels (flags/fashion_mnist.cfg): does the teacher's
feedback do anything, with and without the teacher's UDA term?

    python -m benchmarks.fashion_mnist_ablation --seeds="0 1 2" \\
        --out=benchmarks/results/fashion_mnist_ablation

Rows: the supervised teacher, then MPL on it (uda_weight 0) with the feedback off (the student
distils the supervised teacher) and with taylor feedback at weights 1, 10 and 100; the UDA
teacher, then MPL on it with the feedback off and with taylor feedback (the recipe); FixMatch,
when this checkout registers --method=fixmatch (else the row says it was skipped).

Model selection is on the validation holdout (--select_on_val); the test split is only
reported, before and after finetuning, per seed and as mean ± std, with the paired differences
of runs of the same seed (same labeled subset, same initialisation) and the feedback
diagnostics of the MPL runs (means over each run's log windows, then over seeds).

Resumable across sessions: the JSON is rewritten after every finished run and holds each run's
config; on start, a recorded run whose config matches is reused, so a partial table committed
to git goes on in a fresh checkout (see `ablation.run_recorded`). Runs go seed by seed, so a
partial table has every row at its first seeds.
"""

from absl import flags

from benchmarks import ablation
from mpl_tf import errors

RECIPE = "flags/fashion_mnist.cfg"
OUT = "benchmarks/results/fashion_mnist_ablation"
RUNS = "benchmarks/runs/fashion_mnist_ablation"
NO_UDA = dict(uda_weight=0.0)
DISTIL_SUPERVISED = "MPL, feedback off, no UDA (student distils the supervised teacher)"
TAYLOR_NO_UDA = "MPL, taylor feedback, no UDA"
DISTIL_UDA = "MPL, feedback off (student distils the UDA teacher)"
RECIPE_ROW = "MPL, taylor feedback (recipe)"
VARIANTS = (
    ("supervised", dict(method="supervised")),
    (DISTIL_SUPERVISED, dict(feedback="none", **NO_UDA)),
    (TAYLOR_NO_UDA, dict(NO_UDA)),
    ("MPL, taylor feedback weight 10, no UDA", dict(feedback_weight=10.0, **NO_UDA)),
    ("MPL, taylor feedback weight 100, no UDA", dict(feedback_weight=100.0, **NO_UDA)),
    ("UDA (teacher objective alone)", dict(method="uda")),
    (DISTIL_UDA, dict(feedback="none")),
    (RECIPE_ROW, dict()),
    ("FixMatch", dict(method="fixmatch")),
)
# a - b, paired by seed
PAIRS = (
    ("UDA (teacher objective alone)", "supervised"),
    (DISTIL_SUPERVISED, "supervised"),
    (TAYLOR_NO_UDA, DISTIL_SUPERVISED),
    ("MPL, taylor feedback weight 10, no UDA", DISTIL_SUPERVISED),
    ("MPL, taylor feedback weight 100, no UDA", DISTIL_SUPERVISED),
    (RECIPE_ROW, DISTIL_UDA),
    (RECIPE_ROW, "UDA (teacher objective alone)"),
    ("FixMatch", "UDA (teacher objective alone)"),
)
# results.json keys: test before and after finetuning, the selected validation accuracy
flags.DEFINE_string("only", None, "Run only these variants (comma-separated slugs, e.g. "
                    "supervised,uda); the table shows every row, recorded ones included.")
ACCURACIES = ("test_accuracy_before_finetune", "test_accuracy", "val_accuracy_before_finetune",
              "teacher_test_accuracy")


def run(asked):
    """Trains the variants --only names (all by default) for the seeds `asked` (an
    `ablation.Table`), reusing recorded runs, and writes the table after every run."""
    base, seeds, out, runs_dir = asked.base, asked.seeds, asked.out, asked.runs_dir
    variants = _chosen(flags.FLAGS.only)
    asked.check(variants)
    skipped = {name: ablation.unavailable(o) for name, o in VARIANTS if ablation.unavailable(o)}
    # every recorded run still of this recipe stays in the JSON, whatever seeds are asked now
    kept = {(r["variant"], r["seed"]): r for r in ablation.read_recorded(out + ".json")
            if _current(r, base)}

    def write(runs, show):
        merged = {**kept, **{(r["variant"], r["seed"]): r for r in runs}}
        results = {}
        for (name, seed), run in sorted(merged.items(), key=lambda item: item[0][1]):
            if seed in seeds:
                results.setdefault(name, []).append(run)
        table(out, seeds, results, skipped, list(merged.values()), show=show)

    results, _ = ablation.run_recorded(base, variants, seeds, runs_dir, list(kept.values()),
                                       lambda runs: write(runs, show=False))
    write([r for rs in results.values() for r in rs], show=True)


def _chosen(only):
    """The variants --only names (slugs), all by default."""
    if not only:
        return VARIANTS
    slugs = {ablation.slug(name): (name, overrides) for name, overrides in VARIANTS}
    unknown = [s for s in only.split(",") if s not in slugs]
    if unknown:
        raise errors.ConfigError(f"--only={only}: no variant {', '.join(unknown)}; valid: "
                                 f"{', '.join(slugs)}")
    return [slugs[s] for s in only.split(",")]


def _current(record, base):
    """Whether a recorded run is one this recipe would train now (its variant and seed)."""
    overrides = dict(VARIANTS).get(record.get("variant"))
    if overrides is None or ablation.unavailable(overrides):
        return False
    seed = record["seed"]
    try:
        config = base.replace(seed=seed, split_seed=seed, **overrides).validate()
    except ValueError:  # ConfigError: the recipe changed under it
        return False
    return ablation.same_run(record["config"], config)


def table(out, seeds, results, skipped, runs, show=True):
    """Writes OUT.json (rows, pairs, every run with its config) and OUT.md from `results`
    ({variant: [run records]}, any number of seeds so far)."""
    rows = [row(name, overrides, results.get(name, []), skipped.get(name))
            for name, overrides in VARIANTS]
    pairs = [p for p in (pair(a, b, results) for a, b in PAIRS) if p]
    payload = {"recipe": RECIPE, "seeds": seeds, "rows": rows, "paired": pairs,
               "skipped": skipped, "runs": runs}
    ablation.write(out, payload, markdown(rows, pairs, seeds), show=show)


def row(name, overrides, runs, skipped=None):
    result = {"variant": name, "flags": overrides, "seeds": [r["seed"] for r in runs]}
    if skipped:
        result["skipped"] = skipped
    for key in ACCURACIES:
        result[key] = [r[key] for r in runs if key in r]
    result["selected_step"] = [r.get("selected_step") for r in runs]
    result["seconds"] = [r["wall_seconds"] for r in runs]
    result["diagnostics"] = ablation.diagnostics(runs)
    return result


def pair(a, b, results):
    """Per-seed differences a - b in points, before and after finetuning, over the seeds both
    have (None until they share one)."""
    x = {r["seed"]: r for r in results.get(a, [])}
    y = {r["seed"]: r for r in results.get(b, [])}
    seeds = sorted(set(x) & set(y))
    if not seeds:
        return None
    result = {"a": a, "b": b, "seeds": seeds}
    for key, label in (("test_accuracy_before_finetune", "before"), ("test_accuracy", "after")):
        diffs = [100 * (x[s][key] - y[s][key]) for s in seeds]
        mean, std = ablation.mean_std(diffs)
        result[label] = {"differences_pp": diffs, "mean_pp": mean, "std_pp": std}
    return result


def _percent(values):
    return ablation.percent(values) if values else "–"


def _per_seed(row, key):
    return ", ".join(f"{100 * v:.1f}" for v in row[key]) or "–"


def markdown(rows, pairs, seeds):
    done = {len(r["seeds"]) for r in rows if not r.get("skipped")}
    partial = "" if done == {len(seeds)} else " (partial: the seeds column says which ran)"
    lines = [f"Fashion-MNIST, 400 labels, seeds {' '.join(map(str, seeds))}{partial}; selected "
             "on validation, test reported, mean ± std (%).", "",
             "| variant | seeds | test, before finetune | test, after finetune | per seed (before "
             "/ after) | val (selected) | teacher test | "
             f"{ablation.diagnostic_headers()} | seconds per run |",
             "|---|---|---|---|---|---|---|" + "---|" * len(ablation.DIAGNOSTIC_COLUMNS) + "---|"]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['variant']} | not run: {r['skipped']} |" + " |" * (
                6 + len(ablation.DIAGNOSTIC_COLUMNS)))
            continue
        seconds = f"{sum(r['seconds']) / len(r['seconds']):.0f}" if r["seconds"] else "–"
        teacher = _percent(r["teacher_test_accuracy"]) if r["flags"].get("method") is None \
            else "–"
        lines.append(
            f"| {r['variant']} | {' '.join(map(str, r['seeds'])) or '–'} | "
            f"{_percent(r['test_accuracy_before_finetune'])} | {_percent(r['test_accuracy'])} | "
            f"{_per_seed(r, 'test_accuracy_before_finetune')} / {_per_seed(r, 'test_accuracy')} | "
            f"{_percent(r['val_accuracy_before_finetune'])} | {teacher} | "
            f"{ablation.diagnostic_cells(r)} | {seconds} |")
    lines += ["", "Paired by seed (test accuracy, percentage points, before / after finetuning; "
              "per seed in brackets):", ""] + ([] if pairs else ["- none yet"])
    for p in pairs:
        before, after = p["before"], p["after"]
        per = ", ".join(f"{d:+.1f}" for d in before["differences_pp"])
        lines.append(f"- {p['a']} − {p['b']}: {before['mean_pp']:+.2f} ± {before['std_pp']:.2f}"
                     f" / {after['mean_pp']:+.2f} ± {after['std_pp']:.2f} [{per}] "
                     f"(seeds {' '.join(map(str, p['seeds']))})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ablation.main(run, RECIPE, OUT, RUNS, __doc__, select_on_val=True)
