"""Evaluation of a run or a SavedModel (top-1/top-5 as JSON) and batch prediction of an image
folder to CSV, on hand-made finished runs; bad input fails in one line with exit status 2."""

import csv
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from export_testing import make_run

from mpl_tf import evaluate
from mpl_tf.serving import export
from mpl_tf import predict
from mpl_tf.durable import files
from mpl_tf.data import sources
from mpl_tf.data import two_moons

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """An exported 10-class MLP on 8x8 RGB images, and val/test arrays for it."""
    model_dir = str(tmp_path_factory.mktemp("image_run"))
    network = make_run(model_dir, num_classes=10)
    files.write_json(os.path.join(model_dir, "labeled_indices.json"),  # the split it records
                       {"dataset": "toy", "split_seed": 7, "indices": list(range(40)), "ids": [],
                        "val_indices": None})
    export.export_run(model_dir)
    rng = np.random.default_rng(0)
    data = types.SimpleNamespace(
        name="toy", labeled_indices=np.arange(40), val_indices=None,  # as recorded above
        num_classes=10, val_images=rng.uniform(0, 255, (30, 8, 8, 3)).astype(np.float32),
        val_labels=rng.integers(0, 10, 30), test_images=rng.uniform(0, 255, (50, 8, 8, 3)).astype(
            np.float32), test_labels=rng.integers(0, 10, 50))
    return model_dir, network, data


def expected_accuracies(network, images, labels):
    ranked = np.argsort(-network(images, training=False).numpy(), axis=-1)
    return (float(np.mean(ranked[:, 0] == labels)),
            float(np.mean((ranked[:, :5] == labels[:, None]).any(-1))))


def test_accuracies_count_top1_and_top5():
    probabilities = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05],
                              [0.1, 0.2, 0.3, 0.15, 0.15, 0.1],
                              [0.1, 0.2, 0.3, 0.15, 0.15, 0.1]])
    report = evaluate.accuracies(lambda x: probabilities[x[:, 0]], np.arange(3)[:, None],
                                 np.array([0, 0, 5]), batch_size=2)
    assert report == {"top1_accuracy": 1 / 3, "top5_accuracy": 2 / 3, "num_examples": 3}


def test_run_dir_and_its_saved_model_score_the_same(image_run, monkeypatch, capsys, tmp_path):
    model_dir, network, data = image_run
    monkeypatch.setattr(sources, "load", lambda config: data)
    output = tmp_path / "eval.json"
    assert evaluate.main(["evaluate", f"--model_dir={model_dir}", "--split=val",
                          f"--output={output}"]) == 0
    from_run = json.loads(output.read_text())
    assert json.loads(capsys.readouterr().out) == from_run
    top1, top5 = expected_accuracies(network, data.val_images, data.val_labels)
    assert from_run["top1_accuracy"] == pytest.approx(top1)
    assert from_run["top5_accuracy"] == pytest.approx(top5)
    assert from_run["num_examples"] == 30 and from_run["split"] == "val"
    assert evaluate.main(["evaluate", f"--saved_model={model_dir}/export/saved_model",
                          "--dataset=toy", "--split=val"]) == 0
    from_saved_model = json.loads(capsys.readouterr().out)
    for key in ("top1_accuracy", "top5_accuracy", "num_examples", "top_k"):
        assert from_saved_model[key] == from_run[key]


def test_a_two_moons_run_is_evaluated_on_its_own_data(tmp_path, capsys):
    network = make_run(tmp_path, input_shape=(2,), num_classes=2, dataset="two_moons")
    assert evaluate.main(["evaluate", f"--model_dir={tmp_path}"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = two_moons.make(num_labeled=40, split_seed=7)
    top1, _ = expected_accuracies(network, data.test_images, data.test_labels)
    assert report["top1_accuracy"] == pytest.approx(top1)
    assert report["top5_accuracy"] == 1.0 and report["top_k"] == 2
    assert report["num_examples"] == 2000 and report["dataset"] == "two_moons"


@pytest.mark.parametrize("args,message", [
    ([], "pass exactly one of --model_dir"),
    (["--model_dir=RUN", "--saved_model=RUN/export/saved_model"], "pass exactly one of"),
    (["--model_dir=/no/such/run"], "holds no finished run"),
    (["--saved_model=RUN"], "is not a SavedModel directory"),
    (["--saved_model=RUN/export/hub/classification"], "has no serve_float function"),
    (["--model_dir=RUN", "--split=train"], "--split"),
    (["--saved_model=RUN/export/saved_model", "--dataset=two_moons"],
     "cannot take inputs of shape (2,)"),
])
def test_bad_evaluations_fail_in_one_line(image_run, capsys, args, message):
    model_dir = image_run[0]
    argv = ["evaluate"] + [a.replace("RUN", model_dir) for a in args]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


@pytest.mark.parametrize("flag,message", [
    ("--eval_batch_size=0", "--eval_batch_size=0 must be a positive integer"),
    ("--num_val=-1", "--num_val=-1 must be >= 0"),
    ("--split_seed=-1", "--split_seed=-1 must be >= 0"),
])
def test_a_bad_training_flag_given_to_evaluate_is_one_line(tmp_path, capsys, flag, message):
    """evaluate takes every training flag as an override of the run's config; a bad one is
    refused as main refuses it, not a traceback from deep in the data or the batching."""
    make_run(tmp_path, input_shape=(2,), num_classes=2, dataset="two_moons")
    assert evaluate.main(["evaluate", f"--model_dir={tmp_path}", flag]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_run_fed_data_of_another_shape_is_one_line(image_run, capsys):
    """--model_dir with data flags that change the input (here another dataset) is refused as
    --saved_model is, not a Keras traceback."""
    model_dir = image_run[0]
    assert evaluate.main(["evaluate", f"--model_dir={model_dir}", "--dataset=two_moons"]) == 2
    assert capsys.readouterr().err == (
        f"error: --model_dir={model_dir} cannot take inputs of shape (2,): its network takes "
        f"(8, 8, 3) ({model_dir}/dataset_info.json); drop the data flags that change them\n")


def write_images(folder, count, seed=0):
    """PNG files (one in a subfolder, one JPEG) of various sizes; returns their relative paths
    and the uint8 arrays."""
    rng = np.random.default_rng(seed)
    names, arrays = [], []
    for i in range(count):
        name = f"sub/image_{i}.jpg" if i == count - 1 else f"image_{i}.png"
        array = rng.integers(0, 256, (8 + 2 * i, 10 + i, 3)).astype(np.uint8)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        encode = tf.io.encode_jpeg if name.endswith(".jpg") else tf.io.encode_png
        path.write_bytes(encode(array).numpy())
        names.append(name)
        arrays.append(array)
    return names, arrays


def test_predict_writes_a_csv_of_file_class_probability(image_run, tmp_path, capsys):
    model_dir = image_run[0]
    names, _ = write_images(tmp_path / "images", 5)
    output = tmp_path / "preds.csv"
    assert predict.main(["predict", f"--saved_model={model_dir}/export/saved_model",
                         f"--images={tmp_path / 'images'}", f"--output={output}",
                         "--batch_size=2"]) == 0
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert [row["file"] for row in rows] == sorted(names)
    module = tf.saved_model.load(os.path.join(model_dir, "export", "saved_model"))
    for row in rows:
        content = (tmp_path / "images" / row["file"]).read_bytes()
        outputs = module.signatures["serve_image_bytes"](image_bytes=tf.constant([content]))
        assert row["class"] == outputs["top_k_class_names"][0, 0].numpy().decode()
        assert float(row["probability"]) == pytest.approx(
            float(outputs["top_k_probabilities"][0, 0]), abs=1e-6)
    assert "5 predictions written" in capsys.readouterr().out


def test_predict_names_an_unreadable_image(image_run, tmp_path, capsys):
    model_dir = image_run[0]
    write_images(tmp_path / "images", 3)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    assert predict.main(["predict", f"--saved_model={model_dir}/export/saved_model",
                         f"--images={tmp_path / 'images'}",
                         f"--output={tmp_path / 'preds.csv'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.png is not a readable image" in err
    assert not (tmp_path / "preds.csv").exists()


def test_a_file_that_cannot_be_read_is_named_and_leaves_nothing(image_run, tmp_path):
    """A file that vanished or dangles (a broken symbolic link) is named in a line free of
    TensorFlow's function names, and a call that wrote no row leaves no OUTPUT.meta.json behind
    (nothing describes an output that does not exist). In a fresh process, as a user runs it:
    the line must be all of stderr, without TensorFlow's start-up notices."""
    write_images(tmp_path / "images", 1)
    dangling = tmp_path / "images" / "gone.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    done = subprocess.run([sys.executable, "-m", "mpl_tf.predict",
                           f"--saved_model={image_run[0]}/export/saved_model",
                           f"--images={tmp_path / 'images'}", f"--output={tmp_path / 'p.csv'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr == (f"error: cannot read an image file: {dangling}; No such file or "
                           "directory\n")
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_a_fifo_among_the_images_is_refused_not_read(image_run, tmp_path, capsys):
    """Reading a FIFO named like an image blocks until something writes it: predict would hang.
    It is refused in one line before the model is loaded, and nothing is written."""
    write_images(tmp_path / "images", 1)
    fifo = tmp_path / "images" / "pipe.png"
    os.mkfifo(fifo)
    assert predict.main(["predict", f"--saved_model={image_run[0]}/export/saved_model",
                         f"--images={tmp_path / 'images'}",
                         f"--output={tmp_path / 'p.csv'}"]) == 2
    assert capsys.readouterr().err == (
        f"error: --images={tmp_path / 'images'}: pipe.png is not a regular file (a FIFO, "
        "socket or device); move it out of the folder\n")
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_an_unwritable_output_is_named_by_its_flag(image_run, tmp_path, capsys):
    """predict said "DIR/.tmp-abc123: Permission denied", a temporary file the user never
    named; like evaluate, it names --output and the cause."""
    write_images(tmp_path / "images", 1)
    output = "/proc/predictions.csv"  # an existing directory no one may create files in
    assert predict.main(["predict", f"--saved_model={image_run[0]}/export/saved_model",
                         f"--images={tmp_path / 'images'}", f"--output={output}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write --output={output}: ") and ".tmp-" not in err
    assert err.count("\n") == 1


def test_an_empty_output_is_refused_before_anything_is_written(image_run, tmp_path, capsys,
                                                               monkeypatch):
    """--output= once wrote .meta.json and .partial into the working directory and failed with
    ".partial: No such file or directory"."""
    write_images(tmp_path / "images", 1)
    monkeypatch.chdir(tmp_path)
    assert predict.main(["predict", f"--saved_model={image_run[0]}/export/saved_model",
                         f"--images={tmp_path / 'images'}", "--output="]) == 2
    assert capsys.readouterr().err == ("error: --output is required: the CSV to write, e.g. "
                                       "--output=predictions.csv\n")
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_predict_refuses_an_empty_folder_and_a_non_image_model(image_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert predict.main(["predict", f"--saved_model={image_run[0]}/export/saved_model",
                         f"--images={tmp_path / 'empty'}"]) == 2
    assert "holds no .jpg/.jpeg/.png files" in capsys.readouterr().err
    make_run(tmp_path / "moons", input_shape=(2,), num_classes=2, dataset="two_moons")
    export.export_run(str(tmp_path / "moons"))
    assert predict.main(["predict", f"--saved_model={tmp_path}/moons/export/saved_model",
                         f"--images={tmp_path / 'empty'}"]) == 2
    assert "has no serve_image_bytes signature" in capsys.readouterr().err


def test_predict_streams_its_rows_and_an_interrupted_call_continues(image_run, tmp_path,
                                                                    capsys):
    """Rows reach OUTPUT.partial batch by batch: a file that stops the call keeps the rows
    before it, and once it is fixed the same command continues after them, ending with the
    CSV an uninterrupted call writes."""
    model_dir = image_run[0]
    names, arrays = write_images(tmp_path / "images", 6)
    command = ["predict", f"--saved_model={model_dir}/export/saved_model",
               f"--images={tmp_path / 'images'}", "--batch_size=2"]
    assert predict.main([*command, f"--output={tmp_path / 'whole.csv'}"]) == 0
    fifth = tmp_path / "images" / sorted(names)[4]
    good = fifth.read_bytes()
    fifth.write_bytes(b"broken")
    output = tmp_path / "preds.csv"
    assert predict.main([*command, f"--output={output}"]) == 2
    assert "is not a readable image" in capsys.readouterr().err
    partial = (tmp_path / "preds.csv.partial").read_text().splitlines()
    assert len(partial) == 1 + 4 and not output.exists()  # header + the first two batches
    with open(tmp_path / "preds.csv.partial", "a") as f:
        f.write("image_5.png,cla")  # and a half-written row, as a kill -9 leaves
    fifth.write_bytes(good)
    assert predict.main([*command, f"--output={output}"]) == 0
    out = capsys.readouterr().out
    assert "Resuming after the 4 predictions" in out and "6 predictions written" in out
    assert output.read_text() == (tmp_path / "whole.csv").read_text()
    assert not (tmp_path / "preds.csv.partial").exists()


def test_a_streamed_folder_split_is_evaluated_batch_by_batch(image_run, tmp_path):
    import folder_testing

    from mpl_tf.config import Config

    model_dir, network, _ = image_run
    root = folder_testing.make(str(tmp_path / "data"), test=True)
    config = Config(dataset=f"folder:{root}", num_labeled=6, eval_batch_size=4)
    report = evaluate.evaluate(config, "test", model_dir=model_dir)
    images, labels = next(iter(sources.load(config).examples("test").dataset().batch(100)))
    top1, top5 = expected_accuracies(network, tf.cast(images, tf.float32), labels.numpy())
    assert report["num_examples"] == 9 and report["top1_accuracy"] == pytest.approx(top1)
    assert report["top5_accuracy"] == pytest.approx(top5)


def test_an_output_that_is_not_a_report_of_evaluate_is_never_replaced(image_run, tmp_path,
                                                                      capsys):
    """Not a run's results.json (which broke the run), nor any other file of the user's; its
    own report is written again."""
    model_dir = tmp_path / "moons"
    make_run(model_dir, input_shape=(2,), num_classes=2, dataset="two_moons")
    notes = tmp_path / "notes.json"
    notes.write_text('{"owner": "me"}')
    for target in (model_dir / "results.json", notes, tmp_path / "plain.txt"):
        if not target.exists():
            target.write_text("not JSON")
        before = target.read_bytes()
        assert evaluate.main(["evaluate", f"--model_dir={model_dir}", f"--output={target}"]) == 2
        assert capsys.readouterr().err == (f"error: --output={target} exists and is not a report "
                                           "of evaluate (which replaces only its own); choose "
                                           "another --output\n")
        assert target.read_bytes() == before
    report = tmp_path / "report.json"
    for _ in range(2):
        assert evaluate.main(["evaluate", f"--model_dir={model_dir}", f"--output={report}"]) == 0
        assert set(evaluate.REPORT_KEYS) <= set(json.loads(report.read_text()))


@pytest.mark.parametrize("where", ["a directory", "under no directory"])
def test_an_output_that_cannot_be_written_fails_before_evaluating(tmp_path, capsys, monkeypatch,
                                                                  where):
    """A directory, or a path whose directory does not exist, is refused before the split is
    scored: the write came after it and discarded the report (an hour, on ImageNet), which was
    not printed either."""
    make_run(tmp_path / "moons", input_shape=(2,), num_classes=2, dataset="two_moons")
    output = tmp_path / "reports" if where == "a directory" else tmp_path / "no" / "r.json"
    (tmp_path / "reports").mkdir()
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluated"))
    assert evaluate.main(["evaluate", f"--model_dir={tmp_path / 'moons'}",
                          f"--output={output}"]) == 2
    reason = "Is a directory" if where == "a directory" else "No such file or directory"
    assert capsys.readouterr().err == f"error: cannot write --output={output}: {reason}\n"
    assert not (tmp_path / "no").exists() and not os.listdir(tmp_path / "reports")


def test_an_unwritable_output_is_one_line_and_status_2(image_run, tmp_path, capsys):
    make_run(tmp_path / "moons", input_shape=(2,), num_classes=2, dataset="two_moons")
    (tmp_path / "report.json").mkdir()  # a directory where the file should go
    assert evaluate.main(["evaluate", f"--model_dir={tmp_path / 'moons'}",
                          f"--output={tmp_path / 'report.json'}"]) == 2
    assert capsys.readouterr().err == (f"error: cannot write --output={tmp_path / 'report.json'}"
                                       ": Is a directory\n")
    write_images(tmp_path / "images", 2)
    (tmp_path / "preds.csv.partial").mkdir()
    assert predict.main(["predict", f"--saved_model={image_run[0]}/export/saved_model",
                         f"--images={tmp_path / 'images'}",
                         f"--output={tmp_path / 'preds.csv'}"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'preds.csv.partial'}: Is a directory\n"
