"""Deterministic small folder for split-compatibility checks."""
import os
import numpy as np
from PIL import Image

CLASSES = {"ant": 7, "bee": 9, "cat": 12}
EXTS = (".png", ".jpg", ".JPEG")

def write(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG" if path.endswith(".png") else "JPEG")

def make(root, test=False, corrupt=False):
    n = 0
    for c, count in CLASSES.items():
        for i in range(count):
            sub = "more" if i % 3 == 2 else ""
            write(os.path.join(root, "labeled", c, sub, f"{c}{i:02d}{EXTS[i % 3]}"), n); n += 1
            if test and i < 3:
                write(os.path.join(root, "test", c, f"t{i}.png"), n); n += 1
    for i in range(6):
        write(os.path.join(root, "unlabeled", "d" * (i % 2), f"u{i}.png"), n); n += 1
    if corrupt:
        with open(os.path.join(root, "labeled", "bee", "bee04.jpg"), "wb") as f:
            f.write(b"not a jpeg")
    return root
