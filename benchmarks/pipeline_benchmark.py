"""Can the input pipeline keep up with training? Strong views per second against what one MPL
step on WRN-28-2 consumes, on this machine.

    python -m benchmarks.pipeline_benchmark [--seconds=20] [--out=benchmarks/results/...]

In one process: the training pipeline (`pipeline.train_dataset`, B=16 labeled, U=112 unlabeled,
RandAugment N=2 M=16) on random uint8 images, CIFAR-sized (32x32, flip + pad-and-crop, 16 px
cutout) and ImageNet-sized (256x256 stored, random-resized crop to 224, no cutout as released);
then the median time of one `MetaPseudoLabels.train_step` on WRN-28-2 with the same batch
sizes (32x32), inside a tf.function, after warm-up. The ratio is pipeline strong views per second
over the strong views one step consumes per second (U / step time); above 1 the pipeline keeps
up. Both were measured alone: in training they share the machine's cores.
Writes OUT.json and OUT.md.
"""

import dataclasses
import json
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import recipe
from mpl_tf.data import pipeline, split_data

flags.DEFINE_float("seconds", 20.0, "Timed seconds per pipeline measurement (after warm-up).")
flags.DEFINE_integer("step_repeats", 5, "Timed MPL steps (the median is reported).")
flags.DEFINE_string("out", "benchmarks/results/pipeline_benchmark", "Output path, no extension.")

# The CIFAR-10-4K recipe at B=16, U=112 (small labeled and validation sets for the random
# data), so the timed step does what a real one does.
STEP_CONFIG = recipe("cifar10_4000", labeled_batch_size=16, num_labeled=400, num_val=100)
INPUTS = {  # name: (stored image side, view family, input side, cutout)
    "cifar_32": (32, "flip_pad_crop", 32, 16),
    "imagenet_224": (256, "resized_crop", 224, 0),
}


def random_data(config, stored, view, size, count):
    """SplitData of `count` random uint8-valued images, cut by the usual split rules."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, stored, stored, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int32)
    data = split_data.from_arrays("random", config, (images, labels), (images[:10], labels[:10]),
                                  num_classes=10, default_num_val=10, view=view,
                                  pixel_mean=(128.0,) * 3, pixel_std=(64.0,) * 3)
    return dataclasses.replace(data, input_shape=(size, size, 3))


def pipeline_rate(config, data, seconds):
    """(strong views per second, batches timed) of the training pipeline, after warm-up."""
    iterator = iter(pipeline.train_dataset(data, config))
    for _ in range(3):
        next(iterator)
    start, batches = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        next(iterator)
        batches += 1
    elapsed = time.perf_counter() - start
    return batches * config.global_unlabeled_batch_size / elapsed, batches


def step_seconds(config, data, repeats):
    """Median seconds of one MPL train_step on WRN-28-2 (after tracing and one warm-up)."""
    from mpl_tf.method.build import build_model

    keras.utils.set_random_seed(0)
    strategy = tf.distribute.get_strategy()
    model = build_model(config, data.input_shape, data.num_classes,
                        pixel_mean=data.pixel_mean, pixel_std=data.pixel_std)
    batch = next(iter(pipeline.train_dataset(data, config)))
    step = tf.function(lambda b: strategy.run(model.train_step, args=(b,)))
    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    cfg = flags.FLAGS
    started = time.time()
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "tensorflow": tf.__version__, "load_before": os.getloadavg()},
               "batch": {"labeled": STEP_CONFIG.labeled_batch_size,
                         "unlabeled": STEP_CONFIG.global_unlabeled_batch_size,
                         "augment_magnitude": STEP_CONFIG.augment_magnitude},
               "pipeline": {}}
    for name, (stored, view, size, cutout) in INPUTS.items():
        config = STEP_CONFIG.replace(cutout_size=cutout)
        data = random_data(config, stored, view, size, 4096 if stored <= 64 else 512)
        rate, batches = pipeline_rate(config, data, cfg.seconds)
        results["pipeline"][name] = {"view": view, "input_size": size, "cutout_size": cutout,
                                     "strong_views_per_second": round(rate, 1),
                                     "batches_timed": batches}
        print(f"{name}: {rate:.0f} strong views/s ({batches} batches)", flush=True)
    data = random_data(STEP_CONFIG, 32, "flip_pad_crop", 32, 4096)
    seconds, model = step_seconds(STEP_CONFIG, data, cfg.step_repeats), STEP_CONFIG.model
    consumed = STEP_CONFIG.global_unlabeled_batch_size / seconds
    results["mpl_step"] = {"model": model, "seconds_per_step": round(seconds, 4),
                           "strong_views_consumed_per_second": round(consumed, 1),
                           "images_consumed_per_second": round(
                               (STEP_CONFIG.labeled_batch_size +
                                STEP_CONFIG.global_unlabeled_batch_size) / seconds, 1)}
    results["ratio_pipeline_to_step"] = {
        name: round(p["strong_views_per_second"] / consumed, 2)
        for name, p in results["pipeline"].items()}
    results["machine"]["load_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.time() - started, 1)
    print(f"MPL step ({model}): {seconds:.3f} s, consumes {consumed:.0f} strong views/s; "
          f"ratios {results['ratio_pipeline_to_step']}", flush=True)
    os.makedirs(os.path.dirname(cfg.out), exist_ok=True)
    with open(cfg.out + ".json", "w") as f:
        json.dump(results, f, indent=2)
    with open(cfg.out + ".md", "w") as f:
        f.write(markdown(results))


def markdown(results):
    step = results["mpl_step"]
    lines = [
        "# Input pipeline vs. one MPL step", "",
        f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs, "
        f"TensorFlow {results['machine']['tensorflow']}; load average before "
        f"{results['machine']['load_before'][0]:.2f}, after "
        f"{results['machine']['load_after'][0]:.2f}. Batches: B={results['batch']['labeled']} "
        f"labeled, U={results['batch']['unlabeled']} unlabeled (weak + strong each), "
        f"RandAugment N=2, M={results['batch']['augment_magnitude']:g}. Measured one at a time; "
        "in training the pipeline and the step share the cores.", "",
        f"One MPL step on {step['model']} (32x32, B=16, U=112, released CIFAR settings): "
        f"{step['seconds_per_step']:.3f} s, i.e. {step['strong_views_consumed_per_second']:.0f} "
        f"strong views/s ({step['images_consumed_per_second']:.0f} images/s).", "",
        "| input | view | strong views / s | pipeline / step consumption |",
        "|---|---|---|---|"]
    for name, p in results["pipeline"].items():
        lines.append(f"| {name} | {p['view']}, cutout {p['cutout_size']} | "
                     f"{p['strong_views_per_second']:.0f} | "
                     f"{results['ratio_pipeline_to_step'][name]:.2f} |")
    lines += ["", "The ImageNet row compares a 224 px pipeline with the 32 px WRN step: it says "
              "how many 224 px strong views this machine makes per second, not whether it "
              "could feed a ResNet-50 (whose step would be far slower).", "",
              f"Command: `python -m benchmarks.pipeline_benchmark`; {results['wall_seconds']:.0f} "
              "s wall.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
