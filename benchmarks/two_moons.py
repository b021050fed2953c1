"""The README's Two Moons table: supervised vs UDA vs MPL (each feedback variant) over seeds.

    python -m benchmarks.two_moons --seeds="0 1 2 3 4" --out=benchmarks/results/two_moons

Every run starts from flags/two_moons.cfg (plus any recipe flag given on this command line); a
variant changes only the flags it names. Seed s
sets both the initialisation and the labeled subset (split_seed = s). Accuracy is on all 2,000
points after the last step (no model selection). Writes OUT.json (every run) and OUT.md.
"""

import json
import os
import shutil
import sys

import numpy as np
from absl import flags

from mpl_tf import config as config_lib
from mpl_tf import run_dir

flags.DEFINE_string("seeds", "0 1 2 3 4", "Seeds, space separated.")
flags.DEFINE_string("out", "benchmarks/results/two_moons", "Output path without extension.")
flags.DEFINE_string("runs_dir", "benchmarks/runs/two_moons", "Where the runs' model dirs go.")

RECIPE = "flags/two_moons.cfg"

# (name, flag overrides): each a change from the recipe (MPL, sampled labels, taylor, baseline
# 0.99, UDA teacher, 12 labels).
VARIANTS = (
    ("supervised", dict(method="supervised")),
    ("UDA (teacher objective alone)", dict(method="uda")),
    ("MPL, feedback off (student distils the UDA teacher)", dict(feedback="none")),
    ("MPL, taylor feedback (recipe)", dict()),
    ("MPL, dot feedback", dict(feedback="dot")),
    ("MPL, exact feedback (soft labels)", dict(feedback="exact", label_type="soft",
                                                feedback_baseline_decay=0.0)),
    ("MPL, taylor feedback, no UDA", dict(uda_weight=0.0)),
    ("supervised, 6 labels", dict(method="supervised", num_labeled=6)),
    ("MPL, taylor feedback, 6 labels", dict(num_labeled=6)),
)


def mean_std(values):
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def main(argv):
    flags.FLAGS([argv[0], f"--flagfile={RECIPE}", *argv[1:]])  # later flags override the recipe
    from mpl_tf import train
    from mpl_tf.data import sources

    seeds = [int(s) for s in flags.FLAGS.seeds.split()]
    base = config_lib.Config.from_flags()
    rows, runs = [], []
    for name, overrides in VARIANTS:
        results = []
        for seed in seeds:
            slug = name.split(" (")[0].replace(", ", "_").replace(" ", "_").lower()
            model_dir = os.path.join(flags.FLAGS.runs_dir, f"{slug}_seed{seed}")
            config = base.replace(seed=seed, split_seed=seed, model_dir=model_dir,
                                  **overrides).validate()
            run_dir.prepare(config, overwrite=True)
            result = train.run(config, sources.load(config))
            results.append(result)
            runs.append({"variant": name, **result})
            print(f"{name} seed {seed}: test {result['test_accuracy']:.4f}", flush=True)
        rows.append(_row(name, overrides, results))
    os.makedirs(os.path.dirname(flags.FLAGS.out), exist_ok=True)
    run_dir.write_json(flags.FLAGS.out + ".json", {"recipe": RECIPE, "seeds": seeds,
                                                   "rows": rows, "runs": runs})
    with open(flags.FLAGS.out + ".md", "w") as f:
        f.write(_markdown(rows, seeds))
    figure = os.path.join(flags.FLAGS.runs_dir, "mpl_taylor_feedback_seed0",
                          "decision_boundary.png")
    if os.path.exists(figure):
        shutil.copy(figure, flags.FLAGS.out + "_seed0.png")
    print(open(flags.FLAGS.out + ".md").read())


def _row(name, overrides, results):
    test = mean_std([r["test_accuracy"] for r in results])
    val = mean_std([r["val_accuracy"] for r in results])
    row = {"variant": name, "flags": overrides, "test_mean": test[0], "test_std": test[1],
           "val_mean": val[0], "val_std": val[1],
           "seconds_mean": float(np.mean([r["wall_seconds"] for r in results]))}
    logs = [r["train_logs_mean"] for r in results]
    if "feedback_h_positive" in logs[0]:
        row["h_positive_fraction"] = float(np.mean([g["feedback_h_positive"] for g in logs]))
        row["h_mean"] = float(np.mean([g["feedback_h"] for g in logs]))
    return row


def _markdown(rows, seeds):
    lines = [f"Two Moons, {len(seeds)} seeds ({' '.join(map(str, seeds))}); accuracy on all "
             "2,000 points after the last step, mean ± std.", "",
             "| variant | test accuracy | val accuracy | steps with h > 0 | mean h |",
             "|---|---|---|---|---|"]
    for r in rows:
        h_pos = f"{r['h_positive_fraction']:.2f}" if "h_positive_fraction" in r else "–"
        h_mean = f"{r['h_mean']:.2e}" if "h_mean" in r else "–"
        lines.append(f"| {r['variant']} | {100 * r['test_mean']:.1f} ± {100 * r['test_std']:.1f}"
                     f" | {100 * r['val_mean']:.1f} ± {100 * r['val_std']:.1f} | {h_pos} | "
                     f"{h_mean} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv)
