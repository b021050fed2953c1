"""The one-time scan of a folder dataset, before any training: every file is decoded once, in
parallel inside tf.data, with the very function training uses (decode.py), so a file that would
fail hours into a run fails (or is skipped) now. The scan keeps per image only a few numbers:
its EXIF orientation, whether it decoded, its decoded size and its per-channel pixel sums (the
pixel statistics come from these once the split is known), so memory grows by tens of bytes
per image, never by its pixels.

With a cache directory the scan also writes every decoded (fitted) image there, and a later
run on the unchanged folder reuses both, decoding nothing. The cache is keyed by a hash of
every file's path, size and modification time plus --image_size, and is written to a
temporary directory that is renamed into place only when complete, so a killed run never leaves
a cache that a later run would trust.
"""

import concurrent.futures
import dataclasses
import hashlib
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from mpl_tf.durable.quiet import stderr_silenced
from mpl_tf.data.folder import decode

CACHE_VERSION = 1  # bump when decode.py's output changes, so old caches are not reused
_PER_DIRECTORY = 1000  # cached images per subdirectory


@dataclasses.dataclass(frozen=True)
class Scan:
    """Per file of the scanned list: EXIF `orientations` (uint8), `readable` (bool), decoded
    `shapes` (height, width; 0 where unreadable), per-channel pixel `sums` and `squares`
    (float64, of the image as training sees it) and `cache` (the directory of decoded images,
    or None)."""

    orientations: np.ndarray
    readable: np.ndarray
    shapes: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    cache: str = None

    def pixel_stats(self, indices):
        """Per-channel (mean, std) over the images `indices` (std 1 for a flat channel)."""
        count = float(np.sum(np.prod(self.shapes[indices].astype(np.float64), axis=1)))
        mean = self.sums[indices].sum(axis=0) / count
        std = np.sqrt(np.maximum(self.squares[indices].sum(axis=0) / count - mean * mean, 0.0))
        return (tuple(float(m) for m in mean),
                tuple(float(s) if s > 1e-3 else 1.0 for s in std))

    def loader(self, paths, size):
        """A tf function of a file index -> uint8 image: from the cache when there is one,
        else decoded from `paths` (absolute)."""
        if self.cache:
            directory = os.path.join(self.cache, "images")
            return lambda index: tf.io.parse_tensor(tf.io.read_file(_cached_path(directory,
                                                                                 index)),
                                                    tf.uint8)
        paths, orientations = tf.constant(paths), tf.constant(self.orientations)
        return lambda index: decode.decode(tf.gather(paths, index),
                                           tf.gather(orientations, index), size)


def scan(root, paths, size, cache_dir=None, check_side=None):
    """The `Scan` of `paths` (absolute, below `root`) at --image_size `size`. Before anything
    is decoded, `check_side` (if given) is called with the largest central square's side
    among the files (from their headers), to refuse a size before the work it would cost
    (a cached scan passed it when it was made)."""
    key = fingerprint(root, paths, size) if cache_dir else None
    final = os.path.join(cache_dir, key) if cache_dir else None
    if final and os.path.exists(os.path.join(final, "scan.npz")):
        with np.load(os.path.join(final, "scan.npz")) as saved:
            return Scan(**{k: saved[k] for k in ("orientations", "readable", "shapes", "sums",
                                                 "squares")}, cache=final)
    orientations, sides = _headers(paths)
    if check_side is not None and len(sides):
        check_side(int(sides.max()))
    if not final:
        return _decode_all(paths, orientations, size, None)
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(dir=cache_dir, prefix=f".tmp-{key}-")
    try:
        result = _decode_all(paths, orientations, size, os.path.join(staging, "images"))
        np.savez(os.path.join(staging, "scan.npz"), orientations=result.orientations,
                 readable=result.readable, shapes=result.shapes, sums=result.sums,
                 squares=result.squares)
        os.rename(staging, final)
    except OSError:
        if not os.path.exists(os.path.join(final, "scan.npz")):
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another run finished the same cache first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dataclasses.replace(result, cache=final)


def fingerprint(root, paths, size):
    """A hash of every file's path (relative to `root`), size and modification time, the
    image size and the cache version: any added, removed, renamed or rewritten file changes
    it."""
    digest = hashlib.sha256(f"v{CACHE_VERSION} size={size}\n".encode())
    for path in paths:
        status = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\0{status.st_size}\0"
                      f"{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _headers(paths):
    """(EXIF orientations uint8, shorter sides int) read from the files' headers by a pool of
    threads (Pillow releases the GIL while it reads)."""
    workers = min(32, 4 * (os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(decode.header, paths, chunksize=256))
    return (np.array([o for o, _ in found], np.uint8).reshape(-1),
            np.array([s for _, s in found], np.int64).reshape(-1))


def _decode_all(paths, orientations, size, cache_images):
    """Decodes every file in parallel (unordered; failures dropped and marked unreadable),
    measuring it and, with `cache_images`, writing it there."""
    count = len(paths)
    readable = np.zeros(count, bool)
    shapes = np.zeros((count, 2), np.int32)
    sums, squares = np.zeros((count, 3)), np.zeros((count, 3))

    def measure(index, path, orientation):
        image = decode.decode(path, orientation, size)
        pixels = tf.cast(tf.reshape(image, (-1, 3)), tf.float64)
        outputs = (index, tf.shape(image)[:2], tf.reduce_sum(pixels, 0),
                   tf.reduce_sum(pixels * pixels, 0))
        if cache_images is None:
            return outputs
        write = tf.io.write_file(_cached_path(cache_images, index), tf.io.serialize_tensor(image))
        with tf.control_dependencies([write]):
            return tf.nest.map_structure(tf.identity, outputs)

    dataset = (tf.data.Dataset.from_tensor_slices((np.arange(count), list(paths), orientations))
               .map(measure, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
               .ignore_errors().batch(1024))
    with stderr_silenced():  # libjpeg writes a line to fd 2 for each broken file
        for index, shape, total, square in dataset.as_numpy_iterator():
            readable[index], shapes[index], sums[index], squares[index] = (True, shape, total,
                                                                           square)
    return Scan(orientations, readable, shapes, sums, squares)


def _cached_path(directory, index):
    index = tf.cast(index, tf.int64)
    return tf.strings.join([directory, "/", tf.strings.as_string(index // _PER_DIRECTORY), "/",
                            tf.strings.as_string(index), ".tensor"])
