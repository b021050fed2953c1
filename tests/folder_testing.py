"""A small image folder whose file names and class sizes are fixed, so the split a seed picks in
it can be compared with the one recorded from the in-memory folder loader
(folder_splits_before.json, recorded at commit 7862681 before folders streamed)."""

import json
import os

import numpy as np
from PIL import Image

CLASSES = {"ant": 7, "bee": 9, "cat": 12}
EXTENSIONS = (".png", ".jpg", ".JPEG")
RECORDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "folder_splits_before.json")
# The configurations (Config fields, make() arguments) the recording was made with.
CASES = {
    "A": (dict(num_labeled=6), {}),
    "B": (dict(num_labeled=9, split_seed=5, num_val=4, unlabeled_excludes_labeled=True), {}),
    "C": (dict(label_fraction=0.5, split_seed=2), {}),
    "D": (dict(num_labeled=6, split_seed=1), dict(test=True)),
    "E": (dict(num_labeled=6, split_seed=0, skip_corrupt_images=True), dict(corrupt=True)),
}


def write(path, seed, size=8):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG" if path.endswith(".png") else "JPEG")


def make(root, test=False, corrupt=False, size=8):
    """labeled/{ant,bee,cat} (7, 9, 12 images, a third in a subdirectory, mixed extensions),
    unlabeled/ (6, nested), optionally test/ (3 per class) and one file that is no image."""
    n = 0
    for name, count in CLASSES.items():
        for i in range(count):
            sub = "more" if i % 3 == 2 else ""
            write(os.path.join(root, "labeled", name, sub, f"{name}{i:02d}{EXTENSIONS[i % 3]}"),
                  n, size)
            n += 1
            if test and i < 3:
                write(os.path.join(root, "test", name, f"t{i}.png"), n, size)
                n += 1
    for i in range(6):
        write(os.path.join(root, "unlabeled", "d" * (i % 2), f"u{i}.png"), n, size)
        n += 1
    if corrupt:
        with open(os.path.join(root, "labeled", "bee", "bee04.jpg"), "wb") as f:
            f.write(b"not a jpeg")
    return root


def recorded():
    with open(RECORDED) as f:
        return json.load(f)
