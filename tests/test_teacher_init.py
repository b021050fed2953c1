"""--teacher_init=RUN_DIR: MPL's teacher, or a control's network (and its EMA), starts from the
served network of a finished run; a directory that is not a finished run, or whose network does
not fit, is one line before anything is written."""

import json
import os
import shutil

import numpy as np
import pytest

from command_testing import main_in_process
from mpl_tf.serving import export
from mpl_tf.run import teacher_init
from mpl_tf.method.build import build_model
from mpl_tf.config import Config
from mpl_tf.durable import run_dir
from mpl_tf.errors import ConfigError
from mpl_tf.data import sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = dict(dataset="digits", num_labeled=50, model="cnn", labeled_batch_size=8,
            unlabeled_batch_size=8, train_steps=4, log_every=2)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished supervised digits run (with an EMA, so the served network is the average)."""
    model_dir = tmp_path_factory.mktemp("init") / "run"
    os.chdir(REPO)
    status = main_in_process(*(f"--{k}={v}" for k, v in DATA.items()), "--method=supervised",
                             "--ema_decay=0.5", f"--model_dir={model_dir}")
    assert status == 0
    return str(model_dir)


def built(config):
    """The run's model as training builds it: from --teacher_init when given."""
    data = sources.load(config)
    model = build_model(config, data.input_shape, data.num_classes, pixel_mean=data.pixel_mean,
                        pixel_std=data.pixel_std)
    if config.teacher_init:
        teacher_init.load(model, config, data.input_shape, data.num_classes)
    return model


def same(a, b):
    assert len(a) == len(b)
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("estimator", [
    dict(feedback="taylor"),
    dict(feedback="exact", label_type="soft", feedback_baseline_decay=0.0),  # Keras batch norm
])
def test_the_mpl_teacher_starts_from_the_served_network(finished, estimator):
    served = export.load_run(finished).network.get_weights()
    model = built(Config(**DATA, teacher_init=finished, **estimator).validate())
    assert same(model.teacher.get_weights(), served)
    assert not same(model.student.get_weights(), served)  # the student starts afresh
    plain = built(Config(**DATA, **estimator).validate())
    assert not same(plain.teacher.get_weights(), served)


@pytest.mark.parametrize("method", ["uda", "supervised"])
def test_a_control_and_its_ema_start_from_it(finished, method):
    served = export.load_run(finished).network.get_weights()
    model = built(Config(**DATA, method=method, ema_decay=0.9, teacher_init=finished).validate())
    assert same(model.network.get_weights(), served)
    assert same(model.ema_network.get_weights(), served)


def _fake_run(path, model="cnn", num_classes=10, input_shape=(16, 16, 1), weights=b"x"):
    os.makedirs(os.path.join(path, "model"))
    for name, content in (("config.json", {"dataset": "digits", "method": "supervised",
                                           "seed": 0, "train_steps": 4, "model": model,
                                           "mlp_hidden": [8, 8]}),
                          ("dataset_info.json", {"num_classes": num_classes,
                                                 "input_shape": list(input_shape),
                                                 "class_names": list(map(str, range(num_classes))),
                                                 "pixel_mean": None, "pixel_std": None}),
                          ("results.json", {"test_accuracy": 0.5, "val_accuracy": 0.5})):
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f)
    with open(os.path.join(path, run_dir.SERVING_WEIGHTS), "wb") as f:
        f.write(weights)
    return path


@pytest.mark.parametrize("setup,message", [
    ("absent", "is not a directory"),
    ("unfinished", "holds no finished run (missing results.json, dataset_info.json, "
                   "model/serving.weights.h5)"),
    ("mlp", "trained --model=mlp --mlp_hidden=8,8; this run's network differs (--model=cnn)"),
    ("classes", "has 3 classes; this run's data has 10"),
    ("shape", "takes inputs of shape (12, 12, 1); this run's data has (16, 16, 1)"),
])
def test_a_run_that_does_not_fit_is_one_line(tmp_path, setup, message):
    path = str(tmp_path / "init")
    if setup == "unfinished":
        os.makedirs(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            f.write("{}")
    elif setup != "absent":
        _fake_run(path, model="mlp" if setup == "mlp" else "cnn",
                  num_classes=3 if setup == "classes" else 10,
                  input_shape=(12, 12, 1) if setup == "shape" else (16, 16, 1))
    config = Config(**DATA, teacher_init=path).validate()
    with pytest.raises(ConfigError) as error:
        teacher_init.check(config, (16, 16, 1), 10)
    assert str(error.value) == f"--teacher_init={path} {message}"


def test_weights_that_do_not_load_are_one_line(finished, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(finished, broken)
    with open(os.path.join(broken, run_dir.SERVING_WEIGHTS), "wb") as f:
        f.write(b"not an h5 file")
    with pytest.raises(ConfigError) as error:
        built(Config(**DATA, teacher_init=broken).validate())
    message = str(error.value)
    weights = os.path.join(broken, run_dir.SERVING_WEIGHTS)
    assert message.startswith(f"--teacher_init={broken}: {weights} ") and "\n" not in message


def _run_command(finished, model_dir, *extra):
    os.chdir(REPO)
    return main_in_process(*(f"--{k}={v}" for k, v in DATA.items()), f"--teacher_init={finished}",
                           f"--model_dir={model_dir}", *extra)


def test_the_command_refuses_it_before_writing_anything(finished, tmp_path, capfd):
    model_dir = tmp_path / "run"
    status = _run_command(finished, model_dir, "--image_size=12")
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0] == (f"error: --teacher_init={finished} takes inputs of shape (16, 16, 1); "
                      "this run's data has (12, 12, 1)")
    assert not model_dir.exists()


def _tree(path):
    return {os.path.relpath(os.path.join(d, n), path): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(path) for n in names}


@pytest.mark.parametrize("damage", [
    ("config.json", b"[]"), ("config.json", b'{"model": "cnn", "seed": 7}'),
    ("dataset_info.json", b"null"), ("results.json", b"{}"),
    (run_dir.SERVING_WEIGHTS, b"half"), ("mpl_tf_run.json", b"garbage"),
])
def test_a_damaged_run_is_refused_before_anything_is_written(finished, tmp_path, capfd, damage):
    """Each file is checked as every command reads it back (the marker's sha256, its kind)."""
    copy = str(tmp_path / "teacher")
    shutil.copytree(finished, copy)
    name, content = damage
    with open(os.path.join(copy, name), "wb") as f:
        f.write(content)
    model_dir = tmp_path / "run"
    status = _run_command(copy, model_dir)
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: --teacher_init={copy}: ") and name.split("/")[-1] in err[0]
    assert not model_dir.exists()


@pytest.mark.parametrize("where", ["itself", "inside"])
def test_the_run_directory_itself_is_refused_and_left_whole(finished, tmp_path, capfd, where):
    """With --overwrite, a run that starts from its own directory would delete its teacher."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(finished, model_dir if where == "itself" else os.path.join(model_dir, "t"))
    teacher = model_dir if where == "itself" else os.path.join(model_dir, "t")
    before = _tree(model_dir)
    status = _run_command(teacher, model_dir, "--overwrite")
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0] == (f"error: --teacher_init={teacher} is --model_dir={model_dir} or inside it, "
                      "which this run writes (and --overwrite empties); copy that run "
                      "elsewhere first")
    assert _tree(model_dir) == before


def test_finetuning_and_resuming_do_not_need_it(finished, tmp_path):
    """The finetuning network starts from the trained one, not from --teacher_init."""
    config = Config(**DATA, teacher_init=finished).validate()
    assert config.finetuning().teacher_init is None


def test_an_unfinetuned_exact_feedback_run_exports_and_can_start_a_teacher(tmp_path):
    """Its served network (the EMA student, differentiated twice) has Keras' batch norm, which
    saves another structure than the fused kernel: it is read back all the same."""
    os.chdir(REPO)
    exact = str(tmp_path / "exact")
    status = main_in_process(*(f"--{k}={v}" for k, v in DATA.items()), "--feedback=exact",
                             "--label_type=soft", "--feedback_baseline_decay=0",
                             "--ema_decay=0.5", "--finetune_steps=0", f"--model_dir={exact}")
    assert status == 0 and os.path.exists(os.path.join(exact, "export", "saved_model"))
    served = export.load_run(exact).network.get_weights()
    model = built(Config(**DATA, teacher_init=exact).validate())
    assert same(model.teacher.get_weights(), served)
