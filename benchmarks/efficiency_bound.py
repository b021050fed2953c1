"""The highest float32 efficiency a WRN-28-2 training step could reach on this machine with
TensorFlow's convolution kernels, measured next to what the real step reaches.

    python -m benchmarks.efficiency_bound [--repeats=5] [--bound_out=benchmarks/results/efficiency_bound]

In one process, interleaved rounds of: step_benchmark's MPL step (WRN-28-2, 16 labeled + 112
unlabeled images) and supervised step (128 images), the real `train_step`s; each again with
every batch norm and LeakyReLU of its networks replaced by the identity (convolutions, adds,
heads, losses, optimizers and EMA alone); a 4096^2 float32 matmul; and a sum over a 1 GiB tensor
(this machine's memory read rate).

However well they are fused with each other (short of moving them into the convolution kernels),
training batch norm + activation move each tensor they normalise at least 8 times when it is
differentiated (forward: a read for the statistics, then a read and a write to normalise;
backward: a read of x and dy for the two reductions, then a read of both and a write of dx), and
3 times when it is not (the MPL step's labeled forwards). The bound is
FLOPs / (the convolutions-only step + that traffic at the read rate) / the matmul rate; it is
generous (writes are costed at the read rate, and nothing else in the step gets slower).
"""

import os
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks.step_benchmark import (IMAGE_SHAPE, NUM_CLASSES, CIFAR_MEAN, CIFAR_STD,
                                       MPL_CONFIG, SUPERVISED_CONFIG, batches, interleaved,
                                       machine, matmul_call, matmul_gflops, step_flops, timing)
from mpl_tf import run_dir
from mpl_tf.baselines import Supervised
from mpl_tf.models import leaf_layers
from mpl_tf.mpl import MetaPseudoLabels
from mpl_tf.train import build_model, make_optimizer

# --repeats comes with step_benchmark's flags.
flags.DEFINE_string("bound_out", "benchmarks/results/efficiency_bound",
                    "Output path, no extension.")

GOAL = 0.85  # issue #7: efficiency >= 0.85 of the float32 matmul rate
TRAINED_PASSES, FORWARD_PASSES = 8, 3  # least passes of a BN + act, differentiated or not
READ_BYTES = 2 ** 30
CONFIGS = {"mpl": MPL_CONFIG, "supervised": SUPERVISED_CONFIG}


def main(argv):
    del argv
    cfg = flags.FLAGS
    keras.utils.set_random_seed(0)
    started = time.time()
    data = dict(zip(("mpl", "supervised"), batches()))
    calls, networks = {}, {}
    for name, config in CONFIGS.items():
        model = build_model(config, IMAGE_SHAPE, NUM_CLASSES, pixel_mean=CIFAR_MEAN,
                            pixel_std=CIFAR_STD)
        networks[name] = model.trained_network
        calls[name] = (tf.function(model.train_step), (data[name],))
        calls[f"{name}_convolutions_only"] = (
            tf.function(convolutions_only(model, config).train_step), (data[name],))
    calls["matmul"], calls["memory_read"] = matmul_call("float32"), read_call()
    times = interleaved(calls, warmup=2, repeats=cfg.repeats)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    matmul = matmul_gflops(times["matmul"])
    read_rate = READ_BYTES / median["memory_read"]
    flops = step_flops(networks["mpl"])
    results = {
        "command": " ".join(["python -m benchmarks.efficiency_bound", *sys.argv[1:]]),
        "machine": machine(), "load_average_after": os.getloadavg(), "repeats": cfg.repeats,
        "goal": GOAL, "matmul_gflops_per_second": matmul,
        "memory_read_gb_per_second": round(read_rate / 1e9, 1),
        "steps": {name: bound(median[name], median[f"{name}_convolutions_only"],
                              flops[name]["total"], bn_act_bytes(networks[name], config),
                              matmul, read_rate)
                  for name, config in CONFIGS.items()},
        "timings": {name: timing(seconds) for name, seconds in times.items()},
        "wall_seconds": round(time.time() - started, 1)}
    os.makedirs(os.path.dirname(cfg.bound_out) or ".", exist_ok=True)
    run_dir.write_json(cfg.bound_out + ".json", results)
    with open(cfg.bound_out + ".md", "w") as f:
        f.write(markdown(results))
    print(markdown(results))


class PassThrough(keras.layers.Layer):
    """The identity, taking whatever call arguments the layer it replaces took (a mask,
    training)."""

    def call(self, inputs, **kwargs):
        del kwargs
        return inputs


def convolutions_only(model, config):
    """A model like `model` (same method, config, optimizers, EMA) whose networks have every
    batch norm and LeakyReLU replaced by the identity."""
    def identity_for_bn_act(layer):
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LeakyReLU)):
            return PassThrough(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    def strip(network):
        stripped = keras.models.clone_model(network, clone_function=identity_for_bn_act,
                                            recursive=True)
        if any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in leaf_layers(stripped)):
            raise AssertionError(f"a batch norm of {network.name} survived the stripping")
        return stripped

    if isinstance(model, MetaPseudoLabels):
        stripped = MetaPseudoLabels(strip(model.teacher), strip(model.student), config)
        optimizers = (make_optimizer(config, "teacher"), make_optimizer(config, "student"))
    else:
        stripped = Supervised(strip(model.network), config)
        optimizers = (make_optimizer(config, "teacher"),)
    stripped.attach_ema(strip(model.ema_network), config.ema_decay, config.ema_start_step)
    stripped.compile(*optimizers)
    stripped.build_all(IMAGE_SHAPE)
    return stripped


def bn_act_bytes(network, config):
    """The least bytes one step's batch norms + activations move: every BN input tensor (float32)
    TRAINED_PASSES times per image the step differentiates, FORWARD_PASSES per image it only
    forwards (in training mode)."""
    per_image = sum(4 * int(np.prod(layer.input.shape[1:])) for layer in leaf_layers(network)
                    if isinstance(layer, keras.layers.BatchNormalization))
    if config.method == "mpl":  # teacher on B + 2U, student on U; two labeled forwards on B
        b, u = config.labeled_batch_size, config.global_unlabeled_batch_size
        trained, forwarded = b + 2 * u + u, 2 * b
    else:
        trained, forwarded = config.labeled_batch_size, 0
    return per_image * (TRAINED_PASSES * trained + FORWARD_PASSES * forwarded)


def read_call():
    """(function, args) summing a 1 GiB float32 tensor: the memory read rate."""
    x = tf.random.normal((READ_BYTES // 4,), seed=3)
    return tf.function(lambda: tf.reduce_sum(x)), ()


def bound(seconds, convolutions_only_seconds, flops, traffic_bytes, matmul, read_rate):
    """One step's efficiency, its convolutions-only efficiency, and the bound."""
    def efficiency(step_seconds):
        return round(flops / step_seconds / 1e9 / matmul, 3)

    bn_act_seconds = traffic_bytes / read_rate
    goal_seconds = flops / (GOAL * matmul * 1e9)
    return {
        "gflop": round(flops / 1e9, 2), "seconds": round(seconds, 4),
        "efficiency": efficiency(seconds),
        "convolutions_only_seconds": round(convolutions_only_seconds, 4),
        "convolutions_only_efficiency": efficiency(convolutions_only_seconds),
        "bn_act_least_gb": round(traffic_bytes / 1e9, 2),
        "bn_act_least_seconds": round(bn_act_seconds, 4),
        "bound": efficiency(convolutions_only_seconds + bn_act_seconds),
        "goal_seconds": round(goal_seconds, 4),
        "goal_leaves_bn_act_seconds": round(goal_seconds - convolutions_only_seconds, 4),
    }


def markdown(results):
    rows = [f"| {name} | {s['gflop']} | {s['seconds']} | {s['efficiency']:.1%} | "
            f"{s['convolutions_only_seconds']} | {s['convolutions_only_efficiency']:.1%} | "
            f"{s['bn_act_least_gb']} GB, {s['bn_act_least_seconds']} s | **{s['bound']:.1%}** | "
            f"{s['goal_leaves_bn_act_seconds']} s |"
            for name, s in results["steps"].items()]
    machine_facts = results["machine"]
    return "\n".join([
        "# How close to the matmul rate a WRN-28-2 training step can get here (float32)", "",
        f"`{results['command']}` on {machine_facts['cpu']}, {machine_facts['cores']} cores, "
        f"TF {machine_facts['tensorflow']}; median of {results['repeats']} interleaved rounds. "
        f"Matmul (4096^2, float32) {results['matmul_gflops_per_second']} GFLOP/s and memory "
        f"read {results['memory_read_gb_per_second']} GB/s (a sum over 1 GiB), both in the "
        "same rounds; efficiencies are against that matmul.", "",
        "| step | GFLOP | s | of the matmul rate | BN + LeakyReLU removed: s | of the matmul "
        "rate | least BN + act traffic, at the read rate | bound | the goal "
        f"({results['goal']:.0%}) leaves BN + act |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        "Bound: FLOPs / (the step without BN + LeakyReLU + the least traffic a training BN + "
        "activation makes: each normalised tensor read and written 8 times when differentiated, "
        "3 times when only forwarded; writes costed at the read rate) / the matmul rate.", ""])


if __name__ == "__main__":
    app.run(main)
