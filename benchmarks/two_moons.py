"""The README's Two Moons table: supervised vs UDA vs MPL (each feedback variant) over seeds.

    python -m benchmarks.two_moons --seeds="0 1 2 3 4" --out=benchmarks/results/two_moons

Accuracy is on all 2,000 points after the last step (no model selection). See ablation.py for
how variants and seeds are run.
"""

import os
import shutil

import numpy as np

from benchmarks import ablation

RECIPE = "flags/two_moons.cfg"
OUT = "benchmarks/results/two_moons"
RUNS = "benchmarks/runs/two_moons"

# (name, flag overrides): each a change from the recipe (MPL, sampled labels, taylor, baseline
# 0.99, UDA teacher, 12 labels).
VARIANTS = ablation.METHOD_VARIANTS + (
    ("MPL, taylor feedback, no UDA", dict(uda_weight=0.0)),
    ("supervised, 6 labels", dict(method="supervised", num_labeled=6)),
    ("MPL, taylor feedback, 6 labels", dict(num_labeled=6)),
)


def run(asked):
    """Trains every variant for the seeds `asked` (an `ablation.Table`), then writes the table
    and the recipe's seed-0 decision boundary."""
    base, seeds, out, runs_dir = asked.base, asked.seeds, asked.out, asked.runs_dir
    asked.check(VARIANTS)
    results = ablation.run_variants(base, VARIANTS, seeds, runs_dir)
    rows = [_row(name, overrides, results[name]) for name, overrides in VARIANTS]
    ablation.write(out, {"recipe": RECIPE, "seeds": seeds, "rows": rows,
                         "runs": [{"variant": n, **r} for n, rs in results.items() for r in rs]},
                   _markdown(rows, seeds))
    figure = os.path.join(runs_dir, "mpl_taylor_feedback_seed0", "decision_boundary.png")
    if os.path.exists(figure):
        shutil.copy(figure, out + "_seed0.png")


def _row(name, overrides, results):
    test = ablation.mean_std([r["test_accuracy"] for r in results])
    val = ablation.mean_std([r["val_accuracy"] for r in results])
    row = {"variant": name, "flags": overrides, "test_mean": test[0], "test_std": test[1],
           "val_mean": val[0], "val_std": val[1],
           "seconds_mean": float(np.mean([r["wall_seconds"] for r in results])),
           "diagnostics": ablation.diagnostics(results)}
    return row


def _markdown(rows, seeds):
    lines = [f"Two Moons, {len(seeds)} seeds ({' '.join(map(str, seeds))}); accuracy on all "
             "2,000 points after the last step, mean ± std.", "",
             f"| variant | test accuracy | val accuracy | {ablation.diagnostic_headers()} |",
             "|---|---|---|" + "---|" * len(ablation.DIAGNOSTIC_COLUMNS)]
    for r in rows:
        lines.append(f"| {r['variant']} | {100 * r['test_mean']:.1f} ± {100 * r['test_std']:.1f}"
                     f" | {100 * r['val_mean']:.1f} ± {100 * r['val_std']:.1f} | "
                     f"{ablation.diagnostic_cells(r)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ablation.main(run, RECIPE, OUT, RUNS, __doc__)
