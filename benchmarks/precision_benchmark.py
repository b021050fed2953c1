"""What --precision and --jit_compile buy on the digits recipe (flags/digits.cfg), on this machine.

    python -m benchmarks.precision_benchmark [--rounds=5] [--steps_per_round=20]
        [--accuracy_seeds="0 1 2"] [--out=benchmarks/results/precision_benchmark]

Speed, in one process: for every --precisions value (float32, bfloat16) and jit setting,
the recipe's MPL model and its real training input (`pipeline.train_input`) are built, then
timed in interleaved rounds (each round runs `steps_per_round` steps of every setting, so load
from other processes hits them alike) through the training driver's own step function
(`loop.step_function`), after the first call and `warmup_steps` more. Each setting is timed twice:
fed by the input pipeline (what a run gets) and on one fixed batch (the step alone).

Accuracy (with --accuracy_seeds): the full recipe in float32 and in bfloat16 for each seed
(selected on validation, test reported), and their paired difference. Writes OUT.json and OUT.md.
"""

import os
import shlex
import statistics
import sys
import time

import numpy as np
from absl import flags

from benchmarks import ablation
from mpl_tf.durable import quiet

# First, with its start-up notices off stderr, so a bad flag is one line there.
tf = quiet.import_tensorflow()

from mpl_tf import cli  # noqa: E402
from mpl_tf import errors  # noqa: E402
from mpl_tf.run import loop  # noqa: E402
from mpl_tf.durable import run_dir  # noqa: E402
from mpl_tf.method.build import build_model  # noqa: E402
from mpl_tf.data import pipeline, sources  # noqa: E402

RECIPE = "flags/digits.cfg"

flags.DEFINE_integer("rounds", 5, "Timed rounds (the median round is reported).")
flags.DEFINE_integer("steps_per_round", 20, "Steps of each setting per round.")
flags.DEFINE_integer("warmup_steps", 10, "Untimed steps after the first call.")
flags.DEFINE_list("jit", ["off", "on"], "jit_compile settings to measure.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "--precision settings to measure "
                  "(mixed_float16 runs float16 on Eigen kernels on CPUs: about 100x slower).")
flags.DEFINE_string("accuracy_seeds", "", "Seeds of the float32-vs-bfloat16 accuracy runs "
                    "(space separated; empty: speed only).")


def run(asked):
    """Measures the speed, and the accuracy of the --accuracy_seeds (none by default), of the
    recipe as `asked` (an `ablation.Table`); writes the table. --seeds, which every table
    shares, is refused rather than ignored: the accuracy runs take --accuracy_seeds."""
    base, cfg = asked.base, flags.FLAGS
    if cfg["seeds"].present:
        raise errors.ConfigError("--seeds is not used by precision_benchmark: its accuracy "
                                 'runs take --accuracy_seeds (e.g. --accuracy_seeds="0 1 2")')
    seeds = ablation.parse_seeds(cfg.accuracy_seeds, "accuracy_seeds") \
        if cfg.accuracy_seeds.strip() else ()
    started = time.time()
    data = sources.load(base)
    load_before = os.getloadavg()
    speed = measure_speed(base, data, cfg)
    results = {"command": shlex.join(["python", "-m", "benchmarks.precision_benchmark",
                                      *sys.argv[1:]]),
               "recipe": RECIPE, "cpu": run_dir.cpu_model(), "tensorflow": tf.__version__,
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "rounds": cfg.rounds, "steps_per_round": cfg.steps_per_round,
               "warmup_steps": cfg.warmup_steps, "speed": speed}
    if seeds:
        results["accuracy"] = measure_accuracy(base, list(seeds), asked.runs_dir)
    results["wall_seconds"] = round(time.time() - started, 1)
    ablation.write(asked.out, results, markdown(results))


# --- speed -------------------------------------------------------------------------------------

def measure_speed(base, data, cfg):
    """{"PRECISION/jit-X": {...}}: steps per second with the pipeline and on a fixed batch."""
    strategy = tf.distribute.get_strategy()
    settings, calls = {}, {}
    for precision in cfg.precisions:
        for jit in cfg.jit:
            name = f"{precision}/jit-{jit}"
            config = cli.validated(base.replace(precision=precision, jit_compile=jit == "on"))
            model = build_model(config, data.input_shape, data.num_classes,
                                pixel_mean=data.pixel_mean, pixel_std=data.pixel_std)
            step = loop.step_function(model, strategy, 1, config.jit_compile)
            fed = iter(pipeline.train_input(data, config, strategy))
            fixed = _repeat_first(pipeline.train_input(data, config, strategy), strategy)
            try:
                start = time.perf_counter()
                _steps(step, fed, strategy, 1)
                first = time.perf_counter() - start
                _steps(step, fixed, strategy, 1)
                for iterator in (fed, fixed):
                    _steps(step, iterator, strategy, cfg.warmup_steps)
            except Exception as error:  # noqa: BLE001 -- a setting that cannot run is a result
                lines = str(error).strip().splitlines() or [""]
                settings[name] = {"error": f"{type(error).__name__}: {lines[0][:300]}"}
                continue
            settings[name] = {"first_call_seconds": round(first, 2)}
            calls[(name, "pipeline")] = (step, fed)
            calls[(name, "fixed_batch")] = (step, fixed)
    seconds = {key: [] for key in calls}
    for _ in range(cfg.rounds):
        for key, (step, iterator) in calls.items():
            start = time.perf_counter()
            _steps(step, iterator, strategy, cfg.steps_per_round)
            seconds[key].append(time.perf_counter() - start)
    for (name, feed), times in seconds.items():
        settings[name][f"steps_per_second_{feed}"] = round(
            cfg.steps_per_round / statistics.median(times), 2)
        settings[name][f"round_seconds_{feed}"] = [round(t, 3) for t in times]
    reference = settings.get("float32/jit-off", {})
    for result in settings.values():
        for feed in ("pipeline", "fixed_batch"):
            key = f"steps_per_second_{feed}"
            if key in result and key in reference:
                result[f"speedup_{feed}"] = round(result[key] / reference[key], 3)
    return settings


def _repeat_first(distributed_dataset, strategy):
    """A distributed iterator over the dataset's first batch, repeated (the step without
    input work)."""
    first = next(iter(distributed_dataset))
    repeated = tf.data.Dataset.from_tensors(first).repeat()
    return iter(strategy.experimental_distribute_dataset(repeated))


def _steps(step, iterator, strategy, count):
    for _ in range(count):
        logs = step(iterator)
    loop.logs_to_python(strategy, logs)


# --- accuracy ----------------------------------------------------------------------------------

def measure_accuracy(base, seeds, runs_dir):
    """The recipe in float32 and in bfloat16 per seed (selected on validation)."""
    variants = [(f"MPL, {p}", dict(precision=p)) for p in ("float32", "bfloat16")]
    runs = ablation.run_variants(base.replace(select_on_val=True), variants, seeds, runs_dir)
    rows = []
    for name, _ in variants:
        rows.append({"variant": name,
                     **{key: [r[key] for r in runs[name]] for key in (
                         "test_accuracy_before_finetune", "test_accuracy",
                         "val_accuracy_before_finetune", "wall_seconds")}})
    differences = [100 * (b["test_accuracy_before_finetune"] - a["test_accuracy_before_finetune"])
                   for a, b in zip(runs["MPL, float32"], runs["MPL, bfloat16"])]
    mean, std = ablation.mean_std(differences)
    return {"seeds": seeds, "rows": rows,
            "bfloat16_minus_float32_pp": {"differences": differences, "mean": mean, "std": std}}


# --- report ------------------------------------------------------------------------------------

def markdown(results):
    lines = [
        "# --precision and --jit_compile on the digits recipe", "",
        f"`{results['command']}` on {results['cpu']}, TF {results['tensorflow']}; load average "
        f"{results['load_average_before'][0]:.1f} before, {results['load_average_after'][0]:.1f}"
        f" after. MPL steps of `{results['recipe']}` (cnn, B=16, U=112, 16x16x1) through the "
        f"training driver's step function; median of {results['rounds']} interleaved rounds of "
        f"{results['steps_per_round']} steps, after {results['warmup_steps']} warm-up steps.", "",
        "| precision / jit | steps/s, with input pipeline | speedup | steps/s, fixed batch | "
        "speedup | first call s |", "|---|---|---|---|---|---|"]
    order = ("float32", "bfloat16", "mixed_float16")  # JSON keys come back sorted
    for name, r in sorted(results["speed"].items(),
                          key=lambda item: (order.index(item[0].split("/")[0]), item[0])):
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:160]} |||||")
            continue
        speedups = [f"x{r[key]}" if key in r else "– (no float32/jit-off row)"
                    for key in ("speedup_pipeline", "speedup_fixed_batch")]
        lines.append(f"| {name} | {r['steps_per_second_pipeline']} | {speedups[0]} | "
                     f"{r['steps_per_second_fixed_batch']} | {speedups[1]} | "
                     f"{r['first_call_seconds']} |")
    accuracy = results.get("accuracy")
    if accuracy:
        lines += ["", f"Accuracy, {len(accuracy['seeds'])} seeds "
                  f"({' '.join(map(str, accuracy['seeds']))}), selected on validation, test "
                  "reported, mean ± std (%):", "",
                  "| variant | test, before finetune | test, after finetune | val (selected) | "
                  "seconds per run |", "|---|---|---|---|---|"]
        for r in accuracy["rows"]:
            lines.append(f"| {r['variant']} | "
                         f"{ablation.percent(r['test_accuracy_before_finetune'])} | "
                         f"{ablation.percent(r['test_accuracy'])} | "
                         f"{ablation.percent(r['val_accuracy_before_finetune'])} | "
                         f"{np.mean(r['wall_seconds']):.0f} |")
        d = accuracy["bfloat16_minus_float32_pp"]
        lines += ["", f"bfloat16 − float32, paired by seed (test before finetuning): "
                  f"{d['mean']:+.2f} ± {d['std']:.2f} points."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ablation.main(run, RECIPE, "benchmarks/results/precision_benchmark",
                  "benchmarks/runs/precision_benchmark", __doc__)
