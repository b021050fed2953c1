"""folder:PATH as a stream: the split is the one the in-memory loader chose, the scan finds bad
files up front, every image format is converted and turned upright, the cache gives the same
pixels without decoding, and a folder run killed with -9 resumes exactly."""

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

import folder_testing
from command_testing import assert_same_checkpoints, signal_when
from mpl_tf.durable import checkpoints
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError
from mpl_tf.data.folder import decode, source, scan
from mpl_tf.data import pipeline, sources
from mpl_tf.errors import UnreadableInput

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("case", sorted(folder_testing.CASES))
def test_split_is_the_one_the_in_memory_loader_chose(tmp_path, case):
    flags, layout = folder_testing.CASES[case]
    root = folder_testing.make(str(tmp_path / "data"), **layout)
    cut = source.plan(Config(dataset=f"folder:{root}", **flags), root)
    before = folder_testing.recorded()[case]
    for split in ("labeled", "val", "test"):
        assert cut.ids(split) == before[split], split
    assert sorted(cut.ids("unlabeled")) == before["unlabeled"]
    assert cut.plan.labeled.tolist() == before["labeled_indices"]


def test_streams_are_uint8_files_with_paths_recorded(tmp_path):
    root = folder_testing.make(str(tmp_path / "data"), test=True)
    config = Config(dataset=f"folder:{root}", num_labeled=6)
    data = sources.load(config)
    assert data.labeled_images is None and data.unlabeled_images is None
    assert {s: data.size(s) for s in ("labeled", "unlabeled", "val", "test")} == {
        "labeled": 6, "unlabeled": 28 - 2 + 6, "val": 2, "test": 9}
    images, labels = next(iter(data.examples("test").dataset().batch(9)))
    assert images.dtype == tf.uint8 and images.shape == (9, 8, 8, 3)
    assert labels.numpy().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.val_ids == tuple(source.plan(config, root).ids("val")) and len(data.val_ids) == 2
    assert all(i.startswith(os.path.join("labeled", "")) for i in data.labeled_ids + data.val_ids)
    assert data.info()["skipped_corrupt_images"] == 0


def _truncated_jpeg():
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()[:300]


BAD_FILES = {"labeled/ant/empty.png": b"", "labeled/bee/text.jpg": b"hello",
             "labeled/cat/cut.jpg": _truncated_jpeg(), "unlabeled/png.png": b"\x89PNG\r\n\x1a\n",
             "test/ant/zzz.jpeg": b"\xff\xd8\xff"}


def _with_bad_files(root):
    folder_testing.make(root, test=True)
    for name, content in BAD_FILES.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(content)
    return root


def test_the_scan_names_the_first_bad_files_and_counts_them(tmp_path):
    root = _with_bad_files(str(tmp_path / "data"))
    with pytest.raises(UnreadableInput) as error:
        sources.load(Config(dataset=f"folder:{root}", num_labeled=6))
    message = str(error.value)
    assert "\n" not in message and "5 of 48 images are unreadable" in message
    assert "and 2 more" in message and "--skip_corrupt_images" in message
    named = [n for n in BAD_FILES if os.path.join(root, n) in message]
    assert named == ["labeled/ant/empty.png", "labeled/bee/text.jpg", "labeled/cat/cut.jpg"]


def test_skipped_bad_files_are_counted_and_never_reach_the_pipeline(tmp_path):
    root = _with_bad_files(str(tmp_path / "data"))
    config = Config(dataset=f"folder:{root}", num_labeled=6, skip_corrupt_images=True,
                    labeled_batch_size=6, unlabeled_batch_size=31)
    data = sources.load(config)
    assert data.info()["skipped_corrupt_images"] == 5
    assert data.size("test") == 9 and data.size("unlabeled") == 28 - 2 + 6
    for split in ("val", "test"):  # every file of every split decodes
        assert sum(len(y) for _, y in pipeline.eval_dataset(data, split, 4)) == data.size(split)
    for batch in pipeline.train_dataset(data, config).take(3):
        assert batch[1][1].shape == (31, 8, 8, 3)


def test_a_folder_with_bad_files_fails_the_command_in_one_line(tmp_path):
    root = _with_bad_files(str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "mpl_tf.main", f"--dataset=folder:{root}",
                           f"--model_dir={tmp_path / 'run'}", "--model=cnn", "--num_labeled=6"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert "5 of 48 images are unreadable" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


# --- formats and orientation ---------------------------------------------------------------

def _scene(height=24, width=36):
    """An asymmetric picture (a bright corner block, a ramp), so any wrong flip shows."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 60)], -1)
    image[:height // 3, :width // 4] = (250, 250, 20)
    return image.astype(np.uint8)


def _save(path, image, **options):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **options)
    return path


def _decoded(path, size=0):
    return decode.decode(tf.constant(path), decode.orientation(path), size).numpy()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured_as_pillow_does(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(str(tmp_path / "photo.jpg"), Image.fromarray(_scene()), exif=exif.tobytes(),
                 quality=95)
    with Image.open(path) as opened:
        upright = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"), np.float64)
    ours = _decoded(path)
    assert decode.orientation(path) == orientation and ours.shape == upright.shape
    assert np.abs(ours - upright).mean() < 3  # JPEG decoders differ by a few levels
    stored = np.asarray(Image.open(path).convert("RGB"), np.float64)
    if orientation != 1:  # the stored pixels are not what comes out
        assert ours.shape != stored.shape or np.abs(ours - stored).mean() > 20


def test_every_mode_becomes_rgb_like_pillow_and_16_bit_is_scaled(tmp_path):
    rgb = Image.fromarray(_scene())
    expected = {"gray.png": rgb.convert("L").convert("RGB"), "rgba.png": rgb,
                "la.png": rgb.convert("L").convert("RGB"), "palette.png": rgb.convert("P"),
                "cmyk.jpg": rgb, "gray.jpg": rgb.convert("L").convert("RGB")}
    _save(str(tmp_path / "gray.png"), rgb.convert("L"))
    _save(str(tmp_path / "rgba.png"), rgb.convert("RGBA"))
    _save(str(tmp_path / "la.png"), rgb.convert("LA"))
    _save(str(tmp_path / "palette.png"), rgb.convert("P"))
    _save(str(tmp_path / "cmyk.jpg"), rgb.convert("CMYK"), quality=95)
    _save(str(tmp_path / "gray.jpg"), rgb.convert("L"), quality=95)
    for name, reference in expected.items():
        ours = _decoded(str(tmp_path / name))
        assert ours.dtype == np.uint8 and ours.shape == (24, 36, 3), name
        assert np.abs(ours - np.asarray(reference.convert("RGB"), np.float64)).mean() < 3, name
    deep = (np.arange(24 * 36, dtype=np.uint16).reshape(24, 36) * 75)  # 0..64725
    _save(str(tmp_path / "deep.png"), Image.fromarray(deep))
    assert np.abs(_decoded(str(tmp_path / "deep.png"))[..., 0] - deep / 257.0).max() <= 1


def test_a_folder_of_mixed_formats_and_sizes_streams_at_image_size(tmp_path):
    root = tmp_path / "mixed"
    rgb = Image.fromarray(_scene())
    for i, (mode, ext) in enumerate([("L", "png"), ("RGBA", "png"), ("P", "png"),
                                     ("CMYK", "jpg"), ("RGB", "jpg"), ("I;16", "png")]):
        for label in ("a", "b"):
            image = rgb.resize((36 + 8 * i, 24 + 4 * i))
            image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257) if (
                mode == "I;16") else image.convert(mode)
            _save(str(root / "labeled" / label / f"{i}.{ext}"), image)
    with pytest.raises(ConfigError, match="images differ in size.*set --image_size"):
        source.plan(Config(dataset=f"folder:{root}", num_labeled=2), str(root))
    config = Config(dataset=f"folder:{root}", num_labeled=2, image_size=16)
    data = sources.load(config)
    images = np.concatenate([x for x, _ in data.examples("unlabeled").dataset().batch(20)])
    assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
    assert images.reshape(len(images), -1).std(axis=1).min() > 10  # none came out blank
    assert data.input_shape == (16, 16, 3) and len(data.pixel_mean) == 3


def test_fit_takes_the_central_square_like_pillow(tmp_path):
    path = _save(str(tmp_path / "wide.png"), Image.fromarray(_scene(40, 100)))
    ours = _decoded(path, size=20).astype(np.float64)
    theirs = np.asarray(ImageOps.fit(Image.open(path).convert("RGB"), (20, 20),
                                     Image.BILINEAR), np.float64)
    assert np.abs(ours - theirs).mean() < 4


# --- the cache ------------------------------------------------------------------------------

def _batches(data, config, count=3):
    return [tf.nest.map_structure(lambda t: t.numpy(), b)
            for b in pipeline.train_dataset(data, config).take(count)]


def test_the_cache_gives_the_same_batches_and_decodes_nothing_the_second_time(tmp_path,
                                                                            monkeypatch):
    root = folder_testing.make(str(tmp_path / "data"), size=20)
    config = Config(dataset=f"folder:{root}", num_labeled=6, labeled_batch_size=3,
                    unlabeled_batch_size=5, image_size=16)
    cached = config.replace(cache_dir=str(tmp_path / "cache"))
    plain = _batches(sources.load(config), config)
    first = sources.load(cached)
    assert os.listdir(tmp_path / "cache") == [
        os.path.basename(source.plan(cached, root).scan.cache)]
    monkeypatch.setattr(decode, "decode", lambda *a: (_ for _ in ()).throw(AssertionError))
    again = sources.load(cached)  # decode() would raise: everything comes from the cache
    for a, b in zip(tf.nest.flatten(plain), tf.nest.flatten(_batches(again, cached))):
        np.testing.assert_array_equal(a, b)
    assert again.pixel_mean == first.pixel_mean
    monkeypatch.undo()
    os.utime(os.path.join(root, "labeled", "ant", "ant00.png"), ns=(1, 1))  # a changed file
    sources.load(cached)
    assert len(os.listdir(tmp_path / "cache")) == 2


def test_the_cache_key_covers_path_size_mtime_and_image_size(tmp_path):
    root = folder_testing.make(str(tmp_path / "data"))
    paths = source.plan(Config(dataset=f"folder:{root}", num_labeled=6), root).paths
    key = scan.fingerprint(root, paths, 0)
    assert key == scan.fingerprint(root, list(paths), 0)
    assert key != scan.fingerprint(root, paths, 16)
    assert key != scan.fingerprint(root, paths[:-1], 0)
    with open(paths[0], "ab") as f:
        f.write(b"\0")
    assert key != scan.fingerprint(root, paths, 0)


# --- resume after kill -9 ---------------------------------------------------------------------

def _command(root, model_dir, *extra):
    return [sys.executable, "-m", "mpl_tf.main", f"--dataset=folder:{root}",
            f"--model_dir={model_dir}", "--model=cnn", "--num_labeled=6", "--image_size=12",
            "--labeled_batch_size=4", "--unlabeled_batch_size=8", "--cutout_size=6",
            "--train_steps=60", "--log_every=10", "--momentum=0.9", "--ema_decay=0.9", *extra]


def test_a_folder_run_killed_with_9_resumes_exactly_from_the_cache(tmp_path):
    root = folder_testing.make(str(tmp_path / "data"), size=14)
    env = {**os.environ, "TF_DETERMINISTIC_OPS": "1"}
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    done = subprocess.run(_command(root, whole), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    cached = _command(root, interrupted, f"--cache_dir={tmp_path / 'cache'}")
    first = os.path.join(checkpoints.directory(interrupted, "train"), "ckpt-10.index")
    signal_when(cached, first, signal.SIGKILL, env=env)
    assert not (interrupted / "results.json").exists(), "killed too late: the run had finished"
    assert os.path.exists(first), "killed before the first checkpoint"
    resumed = subprocess.run(cached, cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming train from step" in resumed.stdout
    assert "(cache: " in resumed.stdout
    assert_same_checkpoints(whole, interrupted, "train", 60, more_than=10)
    recorded = json.loads((interrupted / "labeled_indices.json").read_text())
    assert len(recorded["ids"]) == 6 and len(recorded["val_ids"]) == 2


# --- folder -> TFDS ---------------------------------------------------------------------------

def test_folder_to_tfds_writes_a_dataset_tfds_reads_back(tmp_path, capsys):
    import tensorflow_datasets as tfds

    from mpl_tf.data.folder import to_tfds

    root = folder_testing.make(str(tmp_path / "data"), test=True, corrupt=True)
    command = ["folder_to_tfds", f"--folder={root}", "--name=my_pets",
               f"--data_dir={tmp_path / 'tfds'}", "--image_size=6"]
    assert to_tfds.main(command) == 2
    assert "1 of 43 images are unreadable" in capsys.readouterr().err
    assert not (tmp_path / "tfds" / "my_pets").exists()
    assert to_tfds.main([*command, "--skip_corrupt_images"]) == 0
    builder = tfds.builder_from_directory(str(tmp_path / "tfds" / "my_pets" / "1.0.0"))
    assert builder.info.features["label"].names == ["ant", "bee", "cat"]
    counts = {name: split.num_examples for name, split in builder.info.splits.items()}
    assert counts == {"train": 27, "test": 9, "unlabeled": 6}
    examples = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
    by_name = {e["file_name"].decode(): e for e in examples}
    ant = by_name[os.path.join("labeled", "ant", "ant00.png")]
    assert ant["label"] == 0 and ant["image"].dtype == np.uint8 and ant["image"].shape == (6, 6, 3)
    expected = _decoded(os.path.join(root, "labeled", "ant", "ant00.png"), size=6)
    np.testing.assert_array_equal(ant["image"], expected)  # PNG: lossless
    unlabeled = list(tfds.as_numpy(builder.as_dataset(split="unlabeled")))
    assert {int(e["label"]) for e in unlabeled} == {-1}
