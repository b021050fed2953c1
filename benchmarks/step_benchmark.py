"""What one MPL step costs next to one supervised step of the same WRN-28-2, on this machine.

    python -m benchmarks.step_benchmark [--repeats=5] [--out=benchmarks/results/step_benchmark]

In one process: this CPU's matmul rate in float32 and bfloat16 (a large tf.matmul, before and
after the steps, since the machine may be shared); then, for each --precision (float32,
bfloat16) with jit_compile off and on, the time of `MetaPseudoLabels.train_step` (B=16 labeled,
U=112 unlabeled, 32x32x3) and of `Supervised.train_step` on 128 images, each inside a
tf.function; their convolution and matmul FLOPs (counted from layer shapes, cross-checked against
the TF profiler's count on the traced graph); achieved GFLOP/s and efficiency against the matmul
rate of the same precision; peak memory; and a breakdown of the float32 MPL step into its parts,
each timed as its own tf.function. Writes OUT.json and OUT.md.

Timed calls are interleaved (one call of each step per round, `repeats` rounds) so that load from
other processes hits every step alike; medians and minima over rounds are reported.
"""

import json
import os
import platform
import statistics
import sys
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import recipe
from mpl_tf.method import losses
from mpl_tf.durable import run_dir
from mpl_tf.method.build import build_model
from mpl_tf.models import leaf_layers
from mpl_tf.method.teacher_objective import teacher_objective

flags.DEFINE_integer("repeats", 5, "Timed rounds (medians and minima are reported).")
flags.DEFINE_integer("warmup", 1, "Untimed calls after the first (tracing, compiling) call.")
flags.DEFINE_string("out", "benchmarks/results/step_benchmark", "Output path, no extension.")
flags.DEFINE_list("jit", ["off", "on"], "jit_compile settings to measure.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "--precision settings to measure.")

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
CIFAR_MEAN = [0.4914 * 255, 0.4822 * 255, 0.4465 * 255]
CIFAR_STD = [0.2470 * 255, 0.2435 * 255, 0.2616 * 255]
# The CIFAR-10-4K recipe (flags/cifar10_4000.cfg) at the batch sizes asked for here (B=16,
# U=7B=112), so the step does everything a real one does: momentum, weight decay, dropout,
# smoothing, UDA, EMA.
MPL_CONFIG = recipe("cifar10_4000", labeled_batch_size=16)
# XLA on CPU has no kernel for the sampled labels' StatelessMultinomial; argmax labels cost the
# same and show what the rest of the step does under XLA.
ARGMAX_CONFIG = MPL_CONFIG.replace(label_type="argmax")
SUPERVISED_CONFIG = MPL_CONFIG.replace(method="supervised", labeled_batch_size=128)
MATMUL_SIZE = 4096


def main(argv):
    del argv
    cfg = flags.FLAGS
    keras.utils.set_random_seed(0)
    started = time.time()
    load_before = os.getloadavg()
    matmul_before = {p: matmul_alone(p, cfg.repeats) for p in cfg.precisions}
    mpl_data, supervised_data = batches()
    runs, flops, profiled, breakdown = {}, None, None, None
    for precision in cfg.precisions:
        models = {name: build_model(config.replace(precision=precision), IMAGE_SHAPE,
                                    NUM_CLASSES, pixel_mean=CIFAR_MEAN, pixel_std=CIFAR_STD)
                  for name, config in (("mpl", MPL_CONFIG), ("mpl_argmax_labels", ARGMAX_CONFIG),
                                       ("supervised", SUPERVISED_CONFIG))}
        steps = {name: (model.train_step, supervised_data if name == "supervised" else mpl_data)
                 for name, model in models.items()}
        if flops is None:  # the same arithmetic in every precision
            flops = step_flops(models["mpl"].student)
            profiled = {name: profiler_flops(*steps[name]) for name in ("mpl", "supervised")}
        for jit in cfg.jit:
            runs[f"{precision}/jit-{jit}"] = {"precision": precision, "jit": jit,
                                              **measure(steps, jit == "on", precision, cfg)}
        if precision == "float32":
            breakdown = mpl_breakdown(models["mpl"], mpl_data, flops["mpl"], cfg)
    matmul_after = {p: matmul_alone(p, cfg.repeats) for p in cfg.precisions}
    matmul = {p: max(matmul_before[p], matmul_after[p],
                     *(run["matmul_gflops_per_second_same_rounds"] for run in runs.values()
                       if run["precision"] == p)) for p in cfg.precisions}
    for run in runs.values():
        summarize(run, flops, matmul)
    results = {
        "command": " ".join(["python -m benchmarks.step_benchmark", *sys.argv[1:]]),
        "machine": machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "mpl_config": {k: getattr(MPL_CONFIG, k) for k in (
            "model", "labeled_batch_size", "unlabeled_batch_size", "label_type", "feedback",
            "uda_weight", "momentum", "nesterov", "weight_decay", "dropout_rate",
            "label_smoothing", "ema_decay")},
        "supervised_batch_size": SUPERVISED_CONFIG.labeled_batch_size,
        "repeats": cfg.repeats, "warmup": cfg.warmup,
        "matmul_gflops_per_second": {"before": matmul_before, "after": matmul_after,
                                     "used": matmul, "size": MATMUL_SIZE},
        "flops": {**flops, "profiler": profiled},
        "runs": runs, "mpl_breakdown_float32_jit_off": breakdown,
        "wall_seconds": round(time.time() - started, 1),
    }
    os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
    with open(cfg.out + ".json", "w") as f:
        json.dump(results, f, indent=2)
    with open(cfg.out + ".md", "w") as f:
        f.write(markdown(results))
    print(json.dumps(results, indent=2))
    print(f"Wrote {cfg.out}.json and {cfg.out}.md")


# --- inputs and the machine --------------------------------------------------------------------

def batches():
    """Fixed random batches: ((x_l, y_l), (x_uw, x_us, y_u)) for MPL, and 128 labeled images
    (the unlabeled part is ignored by Supervised) for the supervised step."""
    rng = np.random.default_rng(0)

    def images(n):
        return tf.constant(rng.uniform(0, 255, (n, *IMAGE_SHAPE)), tf.float32)

    def labels(n):
        return tf.constant(rng.integers(0, NUM_CLASSES, n), tf.int32)

    b, u = MPL_CONFIG.labeled_batch_size, MPL_CONFIG.global_unlabeled_batch_size
    unlabeled = (images(u), images(u), labels(u))
    n = SUPERVISED_CONFIG.labeled_batch_size
    return ((images(b), labels(b)), unlabeled), ((images(n), labels(n)), unlabeled)


def machine():
    return {"cpu": run_dir.cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


def matmul_call(precision):
    """(function, args) of an n x n matmul, 2 n^3 FLOPs, in the precision's compute dtype
    (bfloat16 for bfloat16): the rate the steps of that precision are held to."""
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    a = tf.cast(tf.random.normal((MATMUL_SIZE, MATMUL_SIZE), seed=1), dtype)
    b = tf.cast(tf.random.normal((MATMUL_SIZE, MATMUL_SIZE), seed=2), dtype)
    return tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))), ()


def matmul_gflops(seconds):
    return round(2 * MATMUL_SIZE ** 3 / statistics.median(seconds) / 1e9, 1)


def matmul_alone(precision, repeats):
    """The matmul rate with nothing else of ours running."""
    return matmul_gflops(interleaved({"matmul": matmul_call(precision)}, 2,
                                     max(repeats, 5))["matmul"])


# --- timing and memory -------------------------------------------------------------------------

def interleaved(calls, warmup, repeats):
    """{name: seconds of each timed call}: `warmup` untimed rounds, then `repeats` rounds that
    call every function once each."""
    times = {name: [] for name in calls}
    for round_index in range(warmup + repeats):
        for name, (fn, args) in calls.items():
            start = time.perf_counter()
            wait_for(fn(*args))
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def wait_for(outputs):
    """Reads every output back, so the clock stops only once the work is done."""
    for tensor in tf.nest.flatten(outputs):
        np.asarray(tensor)


def timing(seconds):
    return {"seconds": round(statistics.median(seconds), 4), "min_seconds": round(min(seconds), 4),
            "all_seconds": [round(s, 3) for s in seconds]}


class PeakRss:
    """Samples the process's resident memory every 5 ms: the peak a phase reaches, including
    what TensorFlow allocates outside its own allocator statistics (e.g. XLA buffers)."""

    def __enter__(self):
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mb(value):
    return round(value / 2 ** 20, 1)


def measure(steps, jit_compile, precision, cfg):
    """Per step: the first call (tracing, compiling) and peak memory over it and the warm-up,
    one step at a time; then the interleaved timed rounds, with the matmul in every round so its
    rate is measured under the same load. A step that fails to compile records its error."""
    run, calls = {}, {"matmul": matmul_call(precision)}
    for name, (train_step, data) in steps.items():
        step = tf.function(train_step, jit_compile=jit_compile)
        tf.config.experimental.reset_memory_stats("CPU:0")
        try:
            with PeakRss() as rss:
                start = time.perf_counter()
                wait_for(step(data))
                first = time.perf_counter() - start
                for _ in range(cfg.warmup):
                    wait_for(step(data))
        except Exception as error:  # noqa: BLE001 -- a compile failure is the result itself
            first_line = (str(error).strip().splitlines() or [""])[0]
            run[name] = {"error": f"{type(error).__name__}: {first_line[:400]}"}
            continue
        run[name] = {
            "first_call_seconds": round(first, 2),
            "tf_allocator_peak_mb": _mb(tf.config.experimental.get_memory_info("CPU:0")["peak"]),
            "process_rss_peak_mb": _mb(rss.peak), "process_rss_before_mb": _mb(rss.start)}
        calls[name] = (step, (data,))
    times = interleaved(calls, warmup=1, repeats=cfg.repeats)
    run["matmul_gflops_per_second_same_rounds"] = matmul_gflops(times.pop("matmul"))
    for name, seconds in times.items():
        run[name].update(timing(seconds))
    return run


def rate(flops, seconds):
    return round(flops / seconds / 1e9, 1) if flops and seconds else None


def summarize(run, flops, matmul):
    """Adds achieved GFLOP/s, efficiency (against the best matmul rate of the run's precision,
    against the matmul in the same rounds, and against the best float32 matmul) and the
    MPL/supervised ratios to one precision and jit setting."""
    for name, result in run.items():
        if isinstance(result, dict) and "seconds" in result:
            total = flops["supervised" if name == "supervised" else "mpl"]["total"]
            achieved = rate(total, result["seconds"])
            result["gflops_per_second"] = achieved
            result["efficiency_vs_matmul"] = round(achieved / matmul[run["precision"]], 3)
            result["efficiency_vs_matmul_same_rounds"] = round(
                achieved / run["matmul_gflops_per_second_same_rounds"], 3)
            if "float32" in matmul:
                result["efficiency_vs_float32_matmul"] = round(achieved / matmul["float32"], 3)
    if "seconds" in run["mpl"] and "seconds" in run["supervised"]:
        run["time_ratio_mpl_over_supervised"] = round(
            run["mpl"]["seconds"] / run["supervised"]["seconds"], 3)
        run["flop_ratio_mpl_over_supervised"] = round(
            flops["mpl"]["total"] / flops["supervised"]["total"], 3)


# --- FLOPs -----------------------------------------------------------------------------------

def forward_flops(network):
    """(forward FLOPs per image, the first weighted layer's share) of convolutions and dense
    layers, 2 per multiply-add. The first layer's input gradient is never needed (its input is
    the data), so backward = 2 x forward - that share."""
    per_layer = []
    for layer in leaf_layers(network):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kh, kw = layer.kernel_size
            per_layer.append(2 * height * width * filters * kh * kw * layer.input.shape[-1])
        elif isinstance(layer, keras.layers.Dense):
            per_layer.append(2 * layer.input.shape[-1] * layer.units)
    return sum(per_layer), per_layer[0]


def step_flops(network):
    """Convolution + matmul FLOPs of each step, from layer shapes.

    MPL (taylor feedback): teacher forward and backward on B + 2U images, student forward and
    backward on U, and two labeled student forwards on B (before and after its update; taylor
    needs no gradient of them). Supervised: forward and backward on its batch.
    """
    forward, first = forward_flops(network)
    backward = 2 * forward - first
    b, u = MPL_CONFIG.labeled_batch_size, MPL_CONFIG.global_unlabeled_batch_size
    teacher, student, labeled = b + 2 * u, u, 2 * b
    n = SUPERVISED_CONFIG.labeled_batch_size
    mpl = {"teacher_forward": teacher * forward, "teacher_backward": teacher * backward,
           "student_forward": student * forward, "student_backward": student * backward,
           "labeled_forwards": labeled * forward}
    return {"method": "analytic (layer shapes)", "forward_per_image": forward,
            "first_layer_forward_per_image": first,
            "mpl": {**mpl, "total": sum(mpl.values())},
            "supervised": {"forward": n * forward, "backward": n * backward,
                           "total": n * (forward + backward)}}


MATMUL_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul",
              "BatchMatMulV2")


def profiler_flops(train_step, data):
    """The TF profiler's float_ops on the traced (unoptimised) graph of the step: convolutions
    and matmuls, and everything (BN, losses, updates). Grappler later prunes the unused input
    gradient of the first convolution, which this graph still holds."""
    graph = tf.function(train_step).get_concrete_function(data).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    root = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    per_type, pending = {}, list(root.children)
    while pending:  # the op view nests each op type under the previous one
        node = pending.pop()
        per_type[node.name] = node.float_ops
        pending.extend(node.children)
    return {"conv_and_matmul": sum(per_type.get(op, 0) for op in MATMUL_OPS),
            "all_ops": root.total_float_ops,
            "by_type": {op: per_type[op] for op in MATMUL_OPS if op in per_type}}


# --- the MPL step's parts --------------------------------------------------------------------

def mpl_breakdown(model, data, flops, cfg):
    """Times each part of the MPL step as its own tf.function (jit off), interleaved with the
    whole step, on the step's batches.

    The parts redo what train_step does (same networks, batch sizes, training=True); backward
    time is (forward + backward) - forward. What the parts leave out (pseudo-label sampling,
    feedback, the non-finite guard and snapshots, metrics, function-call overhead) is `rest`.
    """
    (x_l, y_l), (x_uw, x_us, _) = data
    config = model.config
    b, u = config.labeled_batch_size, config.global_unlabeled_batch_size
    teacher, student = model.teacher, model.student
    teacher_vars, student_vars = teacher.trainable_variables, student.trainable_variables

    def teacher_loss():
        objective = teacher_objective(teacher, x_l, y_l, x_uw, x_us, 0, config)
        t_us = objective.strong_logits
        targets = tf.stop_gradient(tf.one_hot(tf.argmax(t_us, -1), NUM_CLASSES))
        return objective.loss + losses.global_mean(losses.cross_entropy(targets, t_us), u)

    def student_loss():
        logits = student(x_us, training=True)
        targets = tf.one_hot(tf.zeros(u, tf.int32), NUM_CLASSES)
        return losses.global_mean(losses.cross_entropy(targets, logits), u)

    def gradients(loss_fn, variables):
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, variables)

    def labeled_forwards():
        old = losses.supervised(y_l, student(x_l, training=True), b)
        with tf.GradientTape():
            new = losses.supervised(y_l, student(x_l, training=True), b)
        return old, new

    def updates(teacher_grads, student_grads):
        model.student_optimizer.apply(student_grads, student_vars)
        model.teacher_optimizer.apply(teacher_grads, teacher_vars)
        model.update_ema(model.teacher_optimizer.iterations)
        return model.teacher_optimizer.iterations

    grads = (gradients(teacher_loss, teacher_vars), gradients(student_loss, student_vars))
    calls = {
        "teacher_forward": (teacher_loss, ()),
        "teacher_forward_backward": (lambda: gradients(teacher_loss, teacher_vars), ()),
        "student_forward": (student_loss, ()),
        "student_forward_backward": (lambda: gradients(student_loss, student_vars), ()),
        "labeled_forwards": (labeled_forwards, ()),
        "optimizer_updates_and_ema": (updates, grads),
        "step": (model.train_step, (data,)),
    }
    calls = {name: (tf.function(fn), args) for name, (fn, args) in calls.items()}
    medians = {name: statistics.median(seconds) for name, seconds in
               interleaved(calls, warmup=1 + cfg.warmup, repeats=cfg.repeats).items()}
    step = medians.pop("step")
    for network in ("teacher", "student"):
        medians[f"{network}_backward"] = (medians.pop(f"{network}_forward_backward")
                                          - medians[f"{network}_forward"])
    order = ("teacher_forward", "teacher_backward", "student_forward", "student_backward",
             "labeled_forwards", "optimizer_updates_and_ema")
    parts = {name: {"seconds": round(medians[name], 4),
                    "share_of_step": round(medians[name] / step, 3),
                    "gflop": round(flops[name] / 1e9, 1) if name in flops else None,
                    "gflops_per_second": rate(flops.get(name), medians[name])}
             for name in order}
    rest = step - sum(medians[name] for name in order)
    parts["rest"] = {"seconds": round(rest, 4), "share_of_step": round(rest / step, 3)}
    return {"step_seconds": round(step, 4), "parts": parts}


# --- report ----------------------------------------------------------------------------------

def markdown(results):
    """The tables of OUT.md."""
    matmul = results["matmul_gflops_per_second"]
    runs = results["runs"]
    lines = [
        "# One MPL step vs one supervised step (WRN-28-2, 32x32x3, CPU)", "",
        f"`{results['command']}` on {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores, TF {results['machine']['tensorflow']}; load "
        f"average {results['load_average_before'][0]:.1f} before, "
        f"{results['load_average_after'][0]:.1f} after. Median (and min) of "
        f"{results['repeats']} interleaved rounds after warm-up. FLOPs: convolutions + matmuls, "
        "forward and backward, counted from layer shapes.", "",
        f"Matmul ({matmul['size']}^2) GFLOP/s: "
        + "; ".join(f"{p} {matmul['before'][p]} before, {matmul['after'][p]} after, "
                    + ", ".join(f"{run['matmul_gflops_per_second_same_rounds']} in the "
                                f"{name} rounds" for name, run in runs.items()
                                if run["precision"] == p)
                    for p in matmul["used"])
        + ". Efficiency: against the best matmul rate of the step's precision ("
        + ", ".join(f"{p} {rate}" for p, rate in matmul["used"].items())
        + "), in brackets against the matmul of the same rounds.", "",
        "| precision / jit | step | s/step (min) | GFLOP/step | GFLOP/s | efficiency "
        "| first call s | TF peak MB | RSS peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    flops = results["flops"]
    for setting, run in runs.items():
        for name, r in run.items():
            if not isinstance(r, dict):
                continue
            if "error" in r:
                lines.append(f"| {setting} | {name} | failed: {r['error'][:160]} |||||||")
                continue
            total = flops["supervised" if name == "supervised" else "mpl"]["total"]
            lines.append(
                f"| {setting} | {name} | {r['seconds']:.3f} ({r['min_seconds']:.3f}) | "
                f"{total / 1e9:.1f} | {r['gflops_per_second']} | "
                f"{r['efficiency_vs_matmul']:.1%} ({r['efficiency_vs_matmul_same_rounds']:.1%}) | "
                f"{r['first_call_seconds']} | "
                f"{r['tf_allocator_peak_mb']} | {r['process_rss_peak_mb']} |")
        if "time_ratio_mpl_over_supervised" in run:
            lines.append(f"| {setting} | mpl / supervised | time "
                         f"x{run['time_ratio_mpl_over_supervised']} | FLOPs "
                         f"x{run['flop_ratio_mpl_over_supervised']} |||||||")
    profiler = flops["profiler"]
    lines += [
        "", "FLOP cross-check (GFLOP per step): "
        + "; ".join(f"{name}: analytic {flops[name]['total'] / 1e9:.2f}, TF profiler "
                    f"{profiler[name]['conv_and_matmul'] / 1e9:.2f} conv+matmul "
                    f"({profiler[name]['all_ops'] / 1e9:.2f} all ops)"
                    for name in ("mpl", "supervised"))
        + ". The profiler's graph still holds the first convolution's input gradient, which "
        "Grappler prunes before running.", ""]
    breakdown = results["mpl_breakdown_float32_jit_off"]
    if breakdown is None:  # float32 was not measured
        return "\n".join(lines) + "\n"
    lines += [
        "## MPL step breakdown (float32, jit off; step "
        f"{breakdown['step_seconds']} s)", "",
        "| part | s | share | GFLOP | GFLOP/s |", "|---|---|---|---|---|",
    ]
    for name, part in breakdown["parts"].items():
        lines.append(f"| {name} | {part['seconds']:.3f} | {part['share_of_step']:.1%} | "
                     f"{part.get('gflop') or ''} | {part.get('gflops_per_second') or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
