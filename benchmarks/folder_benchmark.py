"""Does a folder dataset's memory stay flat as the folder grows, and can its stream feed a
ResNet-50 at 224 px?

    python -m benchmarks.folder_benchmark [--sizes=1000,10000,50000] [--work_dir=DIR] \
        [--output=benchmarks/results/folder_benchmark]

1. For each size, a synthetic folder of 96 px JPEGs (10 classes in labeled/, generated once in
   parallel into --work_dir and reused) and a short MPL run on it (`python -m mpl_tf.main`, the
   digits CNN, B=8, U=32, --run_steps in 3 epochs) in a fresh process: its peak RSS
   (ru_maxrss of that child, from os.wait4), the scan's seconds (from the run's output) and
   training images per second ((B + U) over Keras' per-step time, the median of the epochs
   after the first). Each folder also has a fixed test/ of 200 images and the runs hold out
   --num_val=100, so evaluation costs the same at every size and only the training folder
   (labeled/, the unlabeled pool) grows.
2. In this process, both on this machine and one after the other: strong 224 px views per
   second of the folder pipeline (`pipeline.train_dataset`, decoding synthetic 400x300 JPEGs
   from disk, the ImageNet-10% recipe's views: random-resized crop, RandAugment M=17, no
   cutout), and strong views per second a ResNet-50 MPL step of that recipe consumes (U over
   the median seconds of `train_step`). The recipe's batch is 1024 labeled + 15 x 1024
   unlabeled; we assume it runs on 8 replicas (one TPU v3-8 or 8 GPUs), so one core's share is
   128 + 1920 images. That batch needs ~300 GB of activations here, so the step is timed at
   1 + 15 (the same 1:15 ratio) and its rate per strong view is taken as the share's: a step's
   cost is close to linear in the batch, and larger batches are at most somewhat more efficient
   per image, so the reported ratio would shrink by that factor at the full share.
Writes OUT.json and OUT.md.
"""

import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from mpl_tf.durable import files

#                            the spawned JPEG writers start fast)

flags.DEFINE_list("sizes", ["1000", "10000", "50000"], "Folder sizes (images) to run.")
flags.DEFINE_string("work_dir", "/tmp/mpl_tf_folder_benchmark", "Where the synthetic folders "
                    "and runs go (folders are generated once and reused).")
# (Named apart from pipeline_benchmark's flags and mpl_tf.config's, which are defined too.)
flags.DEFINE_integer("run_steps", 9, "Steps of each short MPL run (3 epochs).")
flags.DEFINE_float("views_seconds", 30.0, "Timed seconds of the 224 px pipeline (after "
                   "warm-up).")
flags.DEFINE_integer("resnet_steps", 3, "Timed ResNet-50 steps (the median is reported).")
flags.DEFINE_string("output", "benchmarks/results/folder_benchmark", "Output path, no "
                    "extension.")

CLASSES = 10
SMALL_PX = 96
LARGE_SIZE = (400, 300)  # width, height of the 224 px pipeline's source JPEGs
LARGE_COUNT = 600
RECIPE = "flags/imagenet_10pct.cfg"
ASSUMED_REPLICAS = 8
TIMED_LABELED = 1  # the ResNet-50 step's labeled batch (unlabeled: uda_ratio x this)
BATCH = (8, 32)  # labeled, unlabeled batch of the short runs
TEST_IMAGES = 200
RUN_FLAGS = ("--model=cnn", "--num_labeled=100", "--num_val=100", f"--labeled_batch_size={BATCH[0]}",
             f"--unlabeled_batch_size={BATCH[1]}", "--label_type=sampled", "--feedback=taylor",
             "--eval_batch_size=256")
EPOCHS = 3
PIPELINE_BATCH = (4, 60)  # labeled, unlabeled batch of the 224 px pipeline measurement


def _write_images(job):
    """Writes one chunk of a synthetic folder: smooth class-tinted pictures plus noise."""
    root, start, stop, width, height, test_from = job
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        label = i % CLASSES
        tint = np.array([(label * 25) % 256, (label * 70) % 256, (label * 140) % 256], np.float32)
        phase = rng.uniform(0, 6.3, 3)
        wave = 60 * np.sin(x[..., None] / (7 + 3 * label) + y[..., None] / 11 + phase)
        pixels = tint * 0.6 + 70 + wave + rng.normal(0, 12, (height, width, 3))
        part = os.path.join("test" if i >= test_from else "labeled", f"class_{label}")
        path = os.path.join(root, part, f"{i:06d}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=85)


def make_folder(root, count, width, height, test=0):
    """A folder of `count` JPEGs in labeled/ and `test` in test/ (generated in parallel once;
    a `.complete` marker says the folder is whole, so an interrupted generation starts
    over)."""
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    chunk = 500
    jobs = [(root, s, min(s + chunk, count + test), width, height, count)
            for s in range(0, count + test, chunk)]
    with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
        pool.map(_write_images, jobs)
    open(os.path.join(root, ".complete"), "w").close()
    return root


def short_run(root, model_dir, steps):
    """(peak RSS MB, scan seconds, images/s, wall seconds) of one MPL run in a fresh process."""
    command = [sys.executable, "-m", "mpl_tf.main", f"--dataset=folder:{root}",
               f"--model_dir={model_dir}", "--overwrite", f"--train_steps={steps}",
               f"--log_every={steps // EPOCHS}", *RUN_FLAGS]
    log_path = model_dir + ".log"
    start = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.time() - start
    with open(log_path) as f:
        text = f.read()
    if status:
        raise RuntimeError(f"{' '.join(command)} failed; see {log_path}")
    scan = float(re.search(r"Scanned \d+ images of .* in ([\d.]+) s", text).group(1))
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    per_step = [int(n) * units[unit] for n, unit in re.findall(r" - (\d+)(us|ms|s)/step", text)]
    images_per_second = sum(BATCH) / statistics.median(per_step[1:])
    return usage.ru_maxrss / 1024, scan, images_per_second, wall


def recipe_config():
    """The ImageNet-10% recipe's Config (its flagfile, parsed by absl)."""
    from mpl_tf.config import Config

    flags.FLAGS([sys.argv[0], f"--flagfile={RECIPE}"], known_only=True)
    return Config.from_flags()


def large_views_and_step(work_dir, seconds, repeats):
    """(pipeline strong views/s, its batches, step seconds at the timed batch, recipe config)."""
    import dataclasses

    from benchmarks.pipeline_benchmark import pipeline_rate, step_seconds
    from mpl_tf.data import sources

    recipe = recipe_config()
    root = make_folder(os.path.join(work_dir, "large"), LARGE_COUNT, *LARGE_SIZE)
    config = recipe.replace(dataset=f"folder:{root}", label_fraction=0.0, num_labeled=100,
                            num_val=50, labeled_batch_size=PIPELINE_BATCH[0], uda_ratio=0,
                            unlabeled_batch_size=PIPELINE_BATCH[1])
    data = sources.load(config)
    assert data.input_shape == (224, 224, 3) and data.view == "resized_crop"
    rate, batches = pipeline_rate(config, data, seconds)
    timed = recipe.replace(dataset=config.dataset, num_labeled=100,
                           labeled_batch_size=TIMED_LABELED)
    step = step_seconds(timed, dataclasses.replace(data, num_classes=1000), repeats)
    return rate, batches, step, recipe


def main(argv):
    del argv
    cfg = flags.FLAGS
    started = time.time()
    os.makedirs(cfg.work_dir, exist_ok=True)
    os.makedirs(os.path.dirname(cfg.output), exist_ok=True)
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "load_before": os.getloadavg()},
               "run": {"flags": list(RUN_FLAGS), "train_steps": cfg.run_steps,
                       "image_px": SMALL_PX}, "sizes": {}}
    for size in (int(s) for s in cfg.sizes):
        begin = time.time()
        root = make_folder(os.path.join(cfg.work_dir, f"jpeg_{size}"), size, SMALL_PX, SMALL_PX,
                           test=TEST_IMAGES)
        generated = time.time() - begin
        rss, scan, rate, wall = short_run(root, os.path.join(cfg.work_dir, f"run_{size}"),
                                          cfg.run_steps)
        results["sizes"][str(size)] = {"peak_rss_mb": round(rss, 1), "scan_seconds": scan,
                                       "train_images_per_second": round(rate, 1),
                                       "run_wall_seconds": round(wall, 1),
                                       "generate_seconds": round(generated, 1)}
        print(f"{size} images: peak RSS {rss:.0f} MB, scan {scan:.1f} s, {rate:.0f} images/s",
              flush=True)
    sizes = results["sizes"]
    if sizes:
        smallest, largest = sizes[str(min(map(int, sizes)))], sizes[str(max(map(int, sizes)))]
        results["rss_ratio_largest_to_smallest"] = round(
            largest["peak_rss_mb"] / smallest["peak_rss_mb"], 3)
        files.write_json(cfg.output + ".json", results)  # kept if the 224 px part fails

    rate, batches, step, recipe = large_views_and_step(cfg.work_dir, cfg.views_seconds,
                                                       cfg.resnet_steps)
    timed_u = recipe.uda_ratio * TIMED_LABELED
    consumed = timed_u / step
    share = (recipe.labeled_batch_size // ASSUMED_REPLICAS,
             recipe.global_unlabeled_batch_size // ASSUMED_REPLICAS)
    results["views_224"] = {
        "pipeline_strong_views_per_second": round(rate, 1), "pipeline_batches_timed": batches,
        "pipeline_batch": list(PIPELINE_BATCH), "source_jpeg": list(LARGE_SIZE),
        "augment_magnitude": recipe.augment_magnitude, "cutout_size": recipe.cutout_size,
        "recipe_global_batch": [recipe.labeled_batch_size, recipe.global_unlabeled_batch_size],
        "assumed_replicas": ASSUMED_REPLICAS, "per_core_share": list(share),
        "timed_step_batch": [TIMED_LABELED, timed_u], "step_seconds": round(step, 2),
        "step_strong_views_consumed_per_second": round(consumed, 2),
        "per_core_share_step_seconds_linear": round(step * share[1] / timed_u, 1),
        "ratio_pipeline_to_step": round(rate / consumed, 1)}
    print(f"224 px: pipeline {rate:.0f} strong views/s; ResNet-50 MPL step ({TIMED_LABELED} + "
          f"{timed_u}) {step:.1f} s = {consumed:.2f} views/s; ratio {rate / consumed:.0f}",
          flush=True)
    results["machine"]["load_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.time() - started, 1)
    files.write_json(cfg.output + ".json", results)
    files.write_text(cfg.output + ".md", markdown(results))


def markdown(results):
    views = results["views_224"]
    lines = [
        "# Folder datasets: memory against folder size, and the 224 px stream", "",
        f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs, shared "
        f"(load average {results['machine']['load_before'][0]:.1f} before, "
        f"{results['machine']['load_after'][0]:.1f} after).", "",
        f"Short MPL runs (`python -m mpl_tf.main --dataset=folder:PATH "
        f"{' '.join(results['run']['flags'])} --train_steps={results['run']['train_steps']}`), "
        f"each in a fresh process, on synthetic {results['run']['image_px']} px JPEG folders "
        "(10 classes in labeled/, plus a fixed 200-image test/; --num_val=100); peak RSS is the "
        "process's ru_maxrss; images/s is (B + U) over Keras' per-step time (median of the "
        "epochs after the first).", "",
        "| images | peak RSS (MB) | scan (s) | training images / s | run wall (s) |",
        "|---|---|---|---|---|"]
    for size, row in results["sizes"].items():
        lines.append(f"| {int(size):,} | {row['peak_rss_mb']:.0f} | {row['scan_seconds']:.1f} | "
                     f"{row['train_images_per_second']:.0f} | {row['run_wall_seconds']:.0f} |")
    if "rss_ratio_largest_to_smallest" in results:
        lines += ["", f"Peak RSS at the largest size / at the smallest: "
                  f"{results['rss_ratio_largest_to_smallest']:.3f}."]
    lines += [
        "",
        f"224 px strong views (ImageNet-10% recipe's views, from {views['source_jpeg'][0]}x"
        f"{views['source_jpeg'][1]} JPEGs on disk): the folder pipeline makes "
        f"{views['pipeline_strong_views_per_second']:.0f} per second. A ResNet-50 MPL step of "
        f"the recipe at {views['timed_step_batch'][0]} + {views['timed_step_batch'][1]} images "
        f"(its 1:15 ratio) takes {views['step_seconds']:.1f} s, consuming "
        f"{views['step_strong_views_consumed_per_second']:.2f} strong views per second; the "
        f"pipeline is **{views['ratio_pipeline_to_step']:.0f}x** faster. Assumption: the "
        f"recipe's global batch {views['recipe_global_batch'][0]} + "
        f"{views['recipe_global_batch'][1]} runs on {views['assumed_replicas']} replicas, so "
        f"one core's share is {views['per_core_share'][0]} + {views['per_core_share'][1]}; "
        f"at linear cost that step would take {views['per_core_share_step_seconds_linear']:.0f}"
        " s here and consume views at the same rate (measured one after the other; in training "
        "both share the cores).", "",
        f"Command: `python -m benchmarks.folder_benchmark` (`make folder_benchmark`); "
        f"{results['wall_seconds']:.0f} s wall.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
