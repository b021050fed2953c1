"""The method registry (mpl_tf/method/__init__.py): every method declares what a run needs of
it, the code reads the declarations rather than comparing names, and a one-network method's
optimizer takes --network_lr and --network_warmup_steps, falling back on the teacher's flags."""

import dataclasses
import pathlib
import re
import subprocess
import sys

import pytest

from mpl_tf import method as methods
from mpl_tf.config import Config
from mpl_tf.method.build import make_optimizer
from mpl_testing import build, tiny_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIELDS = {f.name for f in dataclasses.fields(Config)}


def test_names_are_known_without_tensorflow():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from mpl_tf import method; "
         "print(','.join(method.NAMES), 'tensorflow' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [",".join(methods.NAMES), "False"], done.stderr


@pytest.mark.parametrize("name", methods.NAMES)
def test_every_method_declares_what_a_run_needs(name):
    trainer = methods.get(name)
    assert trainer.NETWORKS and trainer.TITLE and trainer.DESCRIPTION and trainer.SERVED
    assert trainer.LABELED_LOSS in trainer.LOG_NAMES
    assert set(trainer.FLAGS) <= FIELDS
    for network in trainer.NETWORKS:
        assert network.optimizer in ("teacher", "student", "network")
    model = build(tiny_config(method=name, uda_weight=1.0))
    assert isinstance(model, trainer)
    assert [n.name for n in model.networks] == [n.name for n in trainer.NETWORKS]
    assert model.trained_network is model.networks[-1]


def test_one_method_is_the_supervised_control():
    controls = [name for name in methods.NAMES if not methods.get(name).TWO_D_CONTROL]
    assert controls == [methods.CONTROL]


def test_no_module_compares_a_method_name():
    """What a method is comes from its class; the one place that lists names is the registry.
    (The benchmarks' own variant labels, some spelt like methods, are theirs to compare.)"""
    of_method = re.compile(r"method\s*(==|!=|\bin\b)")
    of_name = re.compile(r"[=!]=\s*\"(" + "|".join(methods.NAMES) + r")\"")
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for folder in ("mpl_tf", "benchmarks") for path in (ROOT / folder).rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if of_method.search(line) or (folder == "mpl_tf" and of_name.search(line))]
    assert found == []


def _first_lr(config, role="network"):
    return float(make_optimizer(config, role).learning_rate())


def test_network_lr_flags_fall_back_on_the_teachers():
    config = tiny_config(teacher_lr=0.3, teacher_warmup_steps=4)
    assert _first_lr(config) == pytest.approx(0.3 / 4) == _first_lr(config, "teacher")
    assert _first_lr(config.replace(network_lr=0.2)) == pytest.approx(0.2 / 4)
    assert _first_lr(config.replace(network_warmup_steps=2)) == pytest.approx(0.3 / 2)
    assert _first_lr(config.replace(network_lr=0.2, network_warmup_steps=0)) == 0.2
    assert _first_lr(config.replace(network_lr=0.2), "teacher") == pytest.approx(0.3 / 4)


def test_finetuning_sets_the_network_flags():
    config = tiny_config(teacher_lr=0.3, teacher_warmup_steps=4, finetune_lr=0.01,
                         finetune_steps=10)
    tuning = config.finetuning()
    assert tuning.network_schedule == (0.01, 0)
    assert _first_lr(tuning) == 0.01
