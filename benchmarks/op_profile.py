"""Where the WRN-28-2 MPL step's time goes, op by op, from a TensorFlow profiler trace.

    python -m benchmarks.op_profile [--precisions=float32,bfloat16] [--steps=3]
        [--profile_out=benchmarks/results/op_profile]

The step is the one benchmarks/step_benchmark.py times (B=16 labeled + U=112 unlabeled 32x32
images, the released CIFAR settings). Inter-op parallelism is 1 here, so ops run one at a time
and their times add up to the step; the kernels still use every core. Ops are grouped into
convolutions (forward and both gradients), batch norm, activations, and everything else; the
convolutions' rate is the step's convolution and matmul FLOPs over their kernel time, set
against this process's matmul rate in the same precision. Writes OUT.json and OUT.md.
"""

import collections
import glob
import os
import statistics
import sys
import tempfile

import tensorflow as tf

tf.config.threading.set_inter_op_parallelism_threads(1)  # before the runtime starts

from absl import flags  # noqa: E402

from benchmarks import step_benchmark as bench  # noqa: E402
from mpl_tf.durable import files

flags.DEFINE_integer("steps", 3, "Profiled steps per precision (after 3 warm-up steps).")
flags.DEFINE_string("profile_out", "benchmarks/results/op_profile", "Output path, no extension.")

GROUPS = (("convolution", ("Conv2D",)), ("batch norm", ("FusedBatchNorm",)),
          ("activation", ("LeakyRelu", "Relu")))
NOT_OPS = ("Process", "Run")  # executor and function-call events that enclose the ops


def main(argv):
    flags.FLAGS(argv)
    cfg = flags.FLAGS
    mpl_data, _ = bench.batches()
    flops = None
    profiles = {}
    for precision in cfg.precisions:
        model = bench.build_model(bench.MPL_CONFIG.replace(precision=precision),
                                  bench.IMAGE_SHAPE, bench.NUM_CLASSES,
                                  pixel_mean=bench.CIFAR_MEAN, pixel_std=bench.CIFAR_STD)
        flops = flops or bench.step_flops(model.student)["mpl"]["total"]
        step = tf.function(model.train_step)
        seconds = bench.interleaved({"step": (step, (mpl_data,)),
                                     "matmul": bench.matmul_call(precision)}, 3, cfg.repeats)
        by_type = traced_op_seconds(step, mpl_data, cfg.steps)
        profiles[precision] = summary(by_type, flops, statistics.median(seconds["step"]),
                                      bench.matmul_gflops(seconds["matmul"]))
    results = {"command": " ".join(["python -m benchmarks.op_profile", *argv[1:]]),
               "machine": bench.machine(), "inter_op_parallelism_threads": 1,
               "step_gflop": round(flops / 1e9, 1), "profiles": profiles}
    os.makedirs(os.path.dirname(cfg.profile_out) or ".", exist_ok=True)
    files.write_json(cfg.profile_out + ".json", results)
    with open(cfg.profile_out + ".md", "w") as f:
        f.write(markdown(results))
    print(markdown(results))


def traced_op_seconds(step, data, steps):
    """{op type: seconds per step} of `steps` traced calls of `step`."""
    logdir = tempfile.mkdtemp(prefix="op_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        bench.wait_for(step(data))
    tf.profiler.experimental.stop()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0],
              "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or name.startswith("__"):
                    continue
                op_type = name.rsplit(":", 1)[1].strip()
                if op_type and op_type not in NOT_OPS and not op_type.startswith("__"):
                    totals[op_type] += event.duration_ps / 1e12 / steps
    return totals


def group_of(op_type):
    for group, markers in GROUPS:
        if any(marker in op_type for marker in markers):
            return group
    return "other"


def summary(by_type, flops, step_seconds, matmul_gflops):
    total = sum(by_type.values())
    groups = collections.Counter()
    for op_type, seconds in by_type.items():
        groups[group_of(op_type)] += seconds
    convolution = groups["convolution"]
    return {
        "step_seconds_untraced": round(step_seconds, 4), "op_seconds_per_step": round(total, 4),
        "matmul_gflops_per_second": matmul_gflops,
        "step_efficiency_vs_matmul": round(flops / step_seconds / 1e9 / matmul_gflops, 3),
        "convolution_gflops_per_second": round(flops / convolution / 1e9, 1),
        "convolution_efficiency_vs_matmul": round(flops / convolution / 1e9 / matmul_gflops, 3),
        "groups": {name: {"seconds": round(seconds, 4), "share": round(seconds / total, 3)}
                   for name, seconds in groups.most_common()},
        "top_op_types": {name: round(seconds, 4) for name, seconds in by_type.most_common(12)},
    }


def markdown(results):
    lines = [
        "# Where the WRN-28-2 MPL step's time goes (TensorFlow profiler, one op at a time)", "",
        f"`{results['command']}` on {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores, TF {results['machine']['tensorflow']}; inter-op "
        f"parallelism 1. Step: B=16 + U=112 32x32 images, {results['step_gflop']} GFLOP of "
        "convolutions and matmuls.", "",
        "| precision | step s (untraced) | of matmul rate | op group | s per step | share of op "
        "time |", "|---|---|---|---|---|---|"]
    for precision, p in results["profiles"].items():
        for i, (group, g) in enumerate(p["groups"].items()):
            head = (f"| {precision} | {p['step_seconds_untraced']} | "
                    f"{p['step_efficiency_vs_matmul']:.1%} " if i == 0 else "| | | ")
            lines.append(f"{head}| {group} | {g['seconds']:.3f} | {g['share']:.1%} |")
    lines.append("")
    for precision, p in results["profiles"].items():
        lines.append(f"- {precision}: the convolution kernels alone run at "
                     f"{p['convolution_gflops_per_second']} GFLOP/s, "
                     f"{p['convolution_efficiency_vs_matmul']:.1%} of the "
                     f"{p['matmul_gflops_per_second']} GFLOP/s {precision} matmul; top op types "
                     "(s per step): " + ", ".join(f"{k} {v:.3f}"
                                                 for k, v in p["top_op_types"].items()))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv)
