"""How close to the matmul rate a float32 WRN-28-2 training step can get on this machine with
TensorFlow's convolution kernels: the real step, the step with batch norm + LeakyReLU in one
hand-written kernel, the step without them, and a bound from their least memory traffic.

    make fused_bn_act    # builds benchmarks/fused_bn_act.so (without it those rows are skipped)
    python -m benchmarks.efficiency_bound [--repeats=5] [--bound_out=benchmarks/results/efficiency_bound]

In one process, interleaved rounds of: step_benchmark's MPL step (WRN-28-2, 16 labeled + 112
unlabeled images) and supervised step (128 images), the real `train_step`s; each again with
every batch norm + LeakyReLU pair computed by benchmarks/fused_bn_act.cc (one kernel forward,
one backward, the fewest passes over memory); each again with every batch norm and LeakyReLU
replaced by the identity (convolutions, adds, heads, losses, optimizers and EMA alone); a 4096^2
float32 matmul; and sums over a 1 GiB tensor (the memory read rate) and over a 32 MiB one,
repeated (the read rate from cache, for tensors of the batch norms' size).

Kept apart from the convolutions and the residual adds, training batch norm + activation read
or write each tensor they normalise at least 8 times when it is differentiated (forward: read
for the statistics, read and write to normalise; backward: read x and dy for the two reductions,
read both and write dx) and 3 times when it is only forwarded (the MPL step's labeled forwards).
The bound is FLOPs / (the step without them + that traffic at a read rate) / the matmul rate,
at the memory rate and at the cache rate: a model, not a proof (writes are costed as reads, and
the two cores are assumed not to overlap this traffic with other work).
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
from mpl_tf import models
from mpl_tf.durable import files
from mpl_tf import method as methods
from mpl_tf.method.build import assemble, build_model
from mpl_tf.models import leaf_layers
from mpl_tf.models.layers import LEAKY_SLOPE, FusedBatchNormalization
from mpl_tf.method.mpl import MetaPseudoLabels

# --repeats comes with step_benchmark's flags.
flags.DEFINE_string("bound_out", "benchmarks/results/efficiency_bound",
                    "Output path, no extension.")
flags.DEFINE_string("fused_op", os.path.join(os.path.dirname(__file__), "fused_bn_act.so"),
                    "The built benchmarks/fused_bn_act.cc (make fused_bn_act).")

GOAL = 0.85  # issue #7: efficiency >= 0.85 of the float32 matmul rate
TRAINED_PASSES, FORWARD_PASSES = 8, 3  # least passes of a BN + act, differentiated or not
READS = {"memory": (1024, 1), "cache": (32, 32)}  # MiB read, times
CONFIGS = {"mpl": MPL_CONFIG, "supervised": SUPERVISED_CONFIG}


def main(argv):
    del argv
    cfg = flags.FLAGS
    keras.utils.set_random_seed(0)
    started = time.time()
    fused_ops = tf.load_op_library(cfg.fused_op) if os.path.exists(cfg.fused_op) else None
    if fused_ops is None:
        print(f"{cfg.fused_op} is not built (make fused_bn_act): skipping the fused-kernel rows")
    variants = {"": None, "_convolutions_only": identity_for_bn_act}
    if fused_ops is not None:
        variants["_fused_kernel"] = fused_kernel_for_bn_act(fused_ops)
    data = dict(zip(("mpl", "supervised"), batches()))
    calls, networks = {}, {}
    for name, config in CONFIGS.items():
        model = build_model(config, IMAGE_SHAPE, NUM_CLASSES, pixel_mean=CIFAR_MEAN,
                            pixel_std=CIFAR_STD)
        networks[name] = model.trained_network
        for suffix, clone_function in variants.items():
            variant = model if clone_function is None else rebuilt(model, config,
                                                                   clone_function)
            calls[name + suffix] = (tf.function(variant.train_step), (data[name],))
    check = None if fused_ops is None else check_fused_kernel(
        SUPERVISED_CONFIG, fused_kernel_for_bn_act(fused_ops), data["supervised"][0][0])
    calls["matmul"] = matmul_call("float32")
    calls.update({f"read_{where}": read_call(*size) for where, size in READS.items()})
    times = interleaved(calls, warmup=2, repeats=cfg.repeats)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    matmul = matmul_gflops(times["matmul"])
    read_rates = {where: mib * 2 ** 20 * count / median[f"read_{where}"]
                  for where, (mib, count) in READS.items()}
    flops = step_flops(networks["mpl"])
    results = {
        "command": " ".join(["python -m benchmarks.efficiency_bound", *sys.argv[1:]]),
        "machine": machine(), "load_average_after": os.getloadavg(), "repeats": cfg.repeats,
        "goal": GOAL, "fused_kernel_check": check, "matmul_gflops_per_second": matmul,
        "read_gb_per_second": {where: round(rate / 1e9, 1) for where, rate in read_rates.items()},
        "steps": {name: summary(median, name, flops[name]["total"],
                                bn_act_bytes(networks[name], config), matmul, read_rates)
                  for name, config in CONFIGS.items()},
        "timings": {name: timing(seconds) for name, seconds in times.items()},
        "wall_seconds": round(time.time() - started, 1)}
    os.makedirs(os.path.dirname(cfg.bound_out) or ".", exist_ok=True)
    files.write_json(cfg.bound_out + ".json", results)
    with open(cfg.bound_out + ".md", "w") as f:
        f.write(markdown(results))
    print(markdown(results))


# --- the rebuilt networks ---------------------------------------------------------------------

class PassThrough(keras.layers.Layer):
    """The identity, taking whatever call arguments the layer it replaces took (a mask,
    training)."""

    def call(self, inputs, **kwargs):
        del kwargs
        return inputs


def identity_for_bn_act(layer):
    """clone_function: batch norm and LeakyReLU become the identity."""
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LeakyReLU)):
        return PassThrough(name=layer.name)
    return layer.__class__.from_config(layer.get_config())


def fused_kernel_for_bn_act(ops):
    """clone_function: each batch norm computes the LeakyReLU after it too (in WRN-28-k every
    batch norm is followed by one), and the LeakyReLU becomes the identity."""
    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            fused = KernelBatchNormLeakyReLU.from_config(layer.get_config())
            fused.ops = ops
            return fused
        if isinstance(layer, keras.layers.LeakyReLU):
            if layer.negative_slope != LEAKY_SLOPE:
                raise AssertionError(f"{layer.name} has slope {layer.negative_slope}")
            return PassThrough(name=layer.name)
        return layer.__class__.from_config(layer.get_config())
    return clone


class KernelBatchNormLeakyReLU(FusedBatchNormalization):
    """Batch norm then LeakyReLU(LEAKY_SLOPE); in float32 training by benchmarks/fused_bn_act.cc
    (set `ops` to the loaded library), otherwise by TensorFlow's ops."""

    ops = None

    def call(self, inputs, training=None, mask=None):
        if not (self.fusable(inputs, training, mask) and self.compute_dtype == "float32"):
            return tf.nn.leaky_relu(super().call(inputs, training=training, mask=mask),
                                    LEAKY_SLOPE)
        # Tensors, not variables: the gradient then flows through the variables' reads.
        y, mean, variance = self._fused(inputs, tf.convert_to_tensor(self.gamma),
                                        tf.convert_to_tensor(self.beta))
        self.update_moving_statistics(mean, variance)
        return y

    def _fused(self, x, gamma, beta):
        attributes = {"epsilon": self.epsilon, "slope": LEAKY_SLOPE}

        @tf.custom_gradient
        def forward(x, gamma, beta):
            y, mean, variance = self.ops.bn_leaky_relu_forward(x, gamma, beta, **attributes)

            def backward(dy, unused_dmean, unused_dvariance):  # the statistics feed no loss
                return self.ops.bn_leaky_relu_backward(dy, x, gamma, beta, mean, variance,
                                                       **attributes)
            return (y, mean, variance), backward

        return forward(x, gamma, beta)


def rebuilt(model, config, clone_function):
    """A model like `model` (same method, config, optimizers, EMA) whose networks are cloned
    through `clone_function`, which must replace every LeakyReLU."""
    def clone(network):
        cloned = keras.models.clone_model(network, clone_function=clone_function,
                                          recursive=True)
        if any(isinstance(layer, keras.layers.LeakyReLU) for layer in leaf_layers(cloned)):
            raise AssertionError(f"a LeakyReLU of {network.name} was kept")
        return cloned

    return assemble(config, type(model), [clone(n) for n in model.networks],
                    clone(model.ema_network), IMAGE_SHAPE)


def check_fused_kernel(config, clone_function, images):
    """The check's figures; raises unless a network with the fused kernel computes its training-mode logits, each
    variable's gradient and its moving statistics as accurately as the same network on
    TensorFlow's float32 ops, both measured against the network in float64 (timing a wrong kernel
    would prove nothing). Dropout off: its masks differ between dtypes."""
    config = config.replace(dropout_rate=0.0)

    def network(dtype):
        return models.build(config, IMAGE_SHAPE, NUM_CLASSES, seed=0, name=f"check_{dtype}",
                            dtype=dtype, pixel_mean=CIFAR_MEAN, pixel_std=CIFAR_STD)

    base = network("float32")
    fused = keras.models.clone_model(base, clone_function=clone_function, recursive=True)
    weights, results = base.get_weights(), {}  # before any training-mode call moves statistics
    for name, copy in (("float64", network("float64")), ("tensorflow", base), ("fused", fused)):
        copy.set_weights(weights)

        @tf.function
        def logits_and_gradients():
            with tf.GradientTape() as tape:
                logits = tf.cast(copy(tf.cast(images, copy.dtype), training=True), tf.float64)
                loss = tf.reduce_mean(logits ** 2)
            return logits, tape.gradient(loss, copy.trainable_variables)

        logits, gradients = logits_and_gradients()
        results[name] = [logits.numpy(), *(np.float64(g) for g in gradients),
                         *(np.float64(w) for w in copy.non_trainable_weights)]
    reference = results["float64"]

    def error(name):
        """The relative error of all outputs together, each output scaled to norm 1 first."""
        return np.sqrt(sum(np.sum((ours - exact) ** 2) / max(np.sum(exact ** 2), 1e-24)
                           for ours, exact in zip(results[name], reference)) / len(reference))

    fused_error, tensorflow_error = error("fused"), error("tensorflow")
    if fused_error > 2 * tensorflow_error:
        raise AssertionError(f"the fused kernel is less accurate than TensorFlow's ops: relative "
                             f"error against float64 {fused_error:.2e} vs {tensorflow_error:.2e}")
    return {"relative_error_vs_float64": {"fused_kernel": float(f"{fused_error:.3g}"),
                                          "tensorflow_ops": float(f"{tensorflow_error:.3g}")}}


# --- memory, and the bound ---------------------------------------------------------------------

def bn_act_bytes(network, config):
    """The least bytes one step's batch norms + activations move: every BN input tensor (float32)
    TRAINED_PASSES times per image the step differentiates, FORWARD_PASSES per image it only
    forwards (in training mode)."""
    per_image = sum(4 * int(np.prod(layer.input.shape[1:])) for layer in leaf_layers(network)
                    if isinstance(layer, keras.layers.BatchNormalization))
    if methods.get(config.method) is MetaPseudoLabels:  # teacher on B + 2U, student on U;
        # two labeled forwards on B
        b, u = config.labeled_batch_size, config.global_unlabeled_batch_size
        trained, forwarded = b + 2 * u + u, 2 * b
    else:
        trained, forwarded = config.labeled_batch_size, 0
    return per_image * (TRAINED_PASSES * trained + FORWARD_PASSES * forwarded)


def read_call(mib, times):
    """(function, args) summing one float32 tensor of `mib` MiB `times` times in a loop."""
    x = tf.random.normal((mib * 2 ** 20 // 4,), seed=3)

    def total():
        return tf.while_loop(lambda i, acc: i < times,
                             lambda i, acc: (i + 1, acc + tf.reduce_sum(x)), (0, 0.0))[1]
    return tf.function(total), ()


def summary(median, name, flops, traffic_bytes, matmul, read_rates):
    """One step's efficiencies (as it is, with the fused kernel, without BN + act) and the
    bound at each read rate."""
    def efficiency(seconds):
        return round(flops / seconds / 1e9 / matmul, 3)

    without = median[f"{name}_convolutions_only"]
    goal_seconds = flops / (GOAL * matmul * 1e9)
    result = {"gflop": round(flops / 1e9, 2), "bn_act_least_gb": round(traffic_bytes / 1e9, 2),
              "goal_seconds": round(goal_seconds, 4),
              "goal_leaves_bn_act_seconds": round(goal_seconds - without, 4)}
    for variant in ("", "_fused_kernel", "_convolutions_only"):
        if name + variant in median:
            result[f"seconds{variant}"] = round(median[name + variant], 4)
            result[f"efficiency{variant}"] = efficiency(median[name + variant])
    for where, rate in read_rates.items():
        result[f"bn_act_least_seconds_at_{where}_rate"] = round(traffic_bytes / rate, 4)
        result[f"bound_at_{where}_rate"] = efficiency(without + traffic_bytes / rate)
    return result


def markdown(results):
    def cell(step, key, form="{:.1%}"):
        return form.format(step[key]) if key in step else "not built"

    rows = [f"| {name} | {s['gflop']} | {s['seconds']} s, {s['efficiency']:.1%} | "
            f"{cell(s, 'efficiency_fused_kernel')} | {s['seconds_convolutions_only']} s, "
            f"{s['efficiency_convolutions_only']:.1%} | {s['bn_act_least_gb']} GB | "
            f"**{s['bound_at_memory_rate']:.1%}** - **{s['bound_at_cache_rate']:.1%}** | "
            f"{s['goal_leaves_bn_act_seconds']} s (the traffic takes "
            f"{s['bn_act_least_seconds_at_cache_rate']}-"
            f"{s['bn_act_least_seconds_at_memory_rate']} s) |"
            for name, s in results["steps"].items()]
    facts, rates = results["machine"], results["read_gb_per_second"]
    return "\n".join([
        "# How close to the matmul rate a WRN-28-2 training step can get here (float32)", "",
        f"`{results['command']}` on {facts['cpu']}, {facts['cores']} cores, TF "
        f"{facts['tensorflow']}; median of {results['repeats']} interleaved rounds. Matmul "
        f"(4096^2, float32) {results['matmul_gflops_per_second']} GFLOP/s; reads "
        f"{rates['memory']} GB/s from memory (1 GiB) and {rates['cache']} GB/s from cache "
        "(32 MiB, repeated); all in the same rounds. Efficiencies are against that matmul.", "",
        "| step | GFLOP | the step | with the fused BN + LeakyReLU kernel | BN + LeakyReLU "
        "removed | least BN + act traffic | bound (memory - cache rate) | the goal "
        f"({results['goal']:.0%}) leaves BN + act |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        "Bound: FLOPs / (the step without BN + LeakyReLU + the least traffic a training BN + "
        "activation makes: each normalised tensor read or written 8 times when differentiated, "
        "3 times when only forwarded; writes costed as reads) / the matmul rate.", "",
        check_line(results["fused_kernel_check"]), ""])


def check_line(check):
    if check is None:
        return "The fused kernel (benchmarks/fused_bn_act.cc) was not built: make fused_bn_act."
    errors = check["relative_error_vs_float64"]
    return ("The fused kernel (benchmarks/fused_bn_act.cc) was checked before timing: the "
            "training-mode logits, gradients and moving statistics of WRN-28-2 on one batch "
            f"are off the float64 network's by {errors['fused_kernel']:.2e} (relative), "
            f"TensorFlow's float32 ops by {errors['tensorflow_ops']:.2e}.")


if __name__ == "__main__":
    app.run(main)
