"""Finished run directories made by hand (config, dataset info, served weights, results), so the
export, evaluation and prediction tests need no training."""

import json
import os

from mpl_tf import models
from mpl_tf.durable import files
from mpl_tf.durable import run_dir
from mpl_tf.config import Config

RESULTS = {"dataset": "toy", "method": "mpl", "seed": 3, "split_seed": 7, "num_labeled": 40,
           "train_steps": 1000, "val_accuracy": 0.8125, "test_accuracy": 0.7734,
           "teacher_test_accuracy": 0.6875, "wall_seconds": 1.0}


def make_run(model_dir, model="mlp", input_shape=(8, 8, 3), num_classes=4, dataset="toy",
             dropout_rate=0.0):
    """Writes a finished run of a freshly initialised network; returns that network."""
    config = Config(model_dir=str(model_dir), model=model, dataset=dataset, seed=3, split_seed=7,
                    num_labeled=40, mlp_hidden=(16, 8), mlp_activation="tanh", mlp_init_scale=0.5,
                    dropout_rate=dropout_rate)
    image = len(input_shape) == 3
    channels = input_shape[-1]
    mean = tuple(100.0 + 10 * c for c in range(channels)) if image else None
    std = tuple(50.0 + 5 * c for c in range(channels)) if image else None
    info = {"name": dataset, "num_classes": num_classes, "input_shape": list(input_shape),
            "class_names": [f"class_{i}" for i in range(num_classes)],
            "pixel_mean": mean and list(mean), "pixel_std": std and list(std),
            "view": "pad_crop" if image else "gaussian_noise"}
    os.makedirs(model_dir, exist_ok=True)
    files.write_json(os.path.join(model_dir, "config.json"), json.loads(config.to_json()))
    files.write_json(os.path.join(model_dir, "dataset_info.json"), info)
    network = models.build(config, input_shape, num_classes, seed=11, name="serving",
                           pixel_mean=mean, pixel_std=std)
    run_dir.save_weights(str(model_dir), network)
    files.write_json(os.path.join(model_dir, "results.json"), {**RESULTS, "dataset": dataset})
    return network

