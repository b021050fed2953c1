"""The ablation on real data (scikit-learn digits, 50 labels): supervised, UDA, MPL with each
feedback estimator and with the feedback off, each before and after finetuning.

    python -m benchmarks.digits_ablation --seeds="0 1 2" --out=benchmarks/results/digits_ablation

Model selection is on the validation holdout (--select_on_val: the best epoch of the served
network); the test split is only reported. Paired differences compare runs of the same seed
(same labeled subset, same initialisation).
"""

import numpy as np

from benchmarks import ablation

RECIPE = "flags/digits.cfg"
OUT = "benchmarks/results/digits_ablation"
RUNS = "benchmarks/runs/digits_ablation"
# The controls, the recipe and the recipe before the common-random-number fix first: the
# comparisons that matter most come first when the table is run in parts (it resumes).
VARIANTS = ablation.METHOD_VARIANTS[:2] + (
    ablation.METHOD_VARIANTS[3],
    ("MPL, taylor feedback, independent dropout masks (before the fix)",
     dict(feedback_forwards="independent")),
    ablation.METHOD_VARIANTS[2], *ablation.METHOD_VARIANTS[4:],
)
PAIRS = (("MPL, taylor feedback (recipe)", "UDA (teacher objective alone)"),
         ("MPL, taylor feedback (recipe)",
          "MPL, taylor feedback, independent dropout masks (before the fix)"),
         ("MPL, taylor feedback (recipe)", "MPL, feedback off (student distils the UDA teacher)"),
         ("MPL, exact feedback (soft labels)", "MPL, feedback off (student distils the UDA "
                                                "teacher)"),
         ("UDA (teacher objective alone)", "supervised"))


def run(asked):
    """Trains every variant for the seeds `asked` (an `ablation.Table`), then writes the table."""
    base, seeds, out, runs_dir = asked.base, asked.seeds, asked.out, asked.runs_dir
    asked.check(VARIANTS)
    results = ablation.run_variants(base, VARIANTS, seeds, runs_dir)
    rows = [_row(name, overrides, results[name]) for name, overrides in VARIANTS]
    pairs = [_pair(a, b, results) for a, b in PAIRS]
    ablation.write(out, {"recipe": RECIPE, "seeds": seeds, "rows": rows, "paired": pairs,
                         "runs": [{"variant": n, **r} for n, rs in results.items() for r in rs]},
                   _markdown(rows, pairs, seeds))


def _row(name, overrides, results):
    row = {"variant": name, "flags": overrides}
    for key in ("test_accuracy_before_finetune", "test_accuracy", "val_accuracy_before_finetune",
                "val_accuracy"):
        row[key] = [r[key] for r in results]
    row["selected_step"] = [r.get("selected_step") for r in results]
    row["seconds_mean"] = float(np.mean([r["wall_seconds"] for r in results]))
    row["diagnostics"] = ablation.diagnostics(results)
    return row


def _pair(a, b, results):
    """Per-seed difference a - b of the test accuracy before finetuning, in points."""
    diffs = [100 * (x["test_accuracy_before_finetune"] - y["test_accuracy_before_finetune"])
             for x, y in zip(results[a], results[b])]
    mean, std = ablation.mean_std(diffs)
    return {"a": a, "b": b, "differences_pp": diffs, "mean_pp": mean, "std_pp": std}


def _markdown(rows, pairs, seeds):
    lines = [f"Digits, 50 labels, {len(seeds)} seeds ({' '.join(map(str, seeds))}); "
             "selected on validation, test reported, mean ± std (%).", "",
             "| variant | test, before finetune | test, after finetune | val (selected) | "
             f"{ablation.diagnostic_headers()} | seconds per run |",
             "|---|---|---|---|" + "---|" * len(ablation.DIAGNOSTIC_COLUMNS) + "---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {ablation.percent(r['test_accuracy_before_finetune'])}"
                     f" | {ablation.percent(r['test_accuracy'])} | "
                     f"{ablation.percent(r['val_accuracy_before_finetune'])} | "
                     f"{ablation.diagnostic_cells(r)} | {r['seconds_mean']:.0f} |")
    lines += ["", "Paired by seed (test before finetuning, percentage points):", ""]
    for p in pairs:
        lines.append(f"- {p['a']} − {p['b']}: {p['mean_pp']:+.2f} ± {p['std_pp']:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ablation.main(run, RECIPE, OUT, RUNS, __doc__, select_on_val=True)
