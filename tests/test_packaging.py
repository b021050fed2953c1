"""The pip package: the wheel holds every module, every recipe and the five commands, with
requirements.txt's runtime pins as its dependencies; installed outside the checkout, its train
command runs a packaged recipe from another directory, and each command is the same program as
its `python -m` form."""

import importlib
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

import mpl_tf
from mpl_tf import commands

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ("mpl_tf", "flags", "pyproject.toml", "setup.py", "MANIFEST.in", "requirements.txt",
           "README.md")


def _runtime_pins():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    runtime = lines[:next(i for i, line in enumerate(lines) if line.startswith("# Tests"))]
    return [line for line in runtime if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built by pip from a copy of the sources (an in-tree build would leave build/
    and *.egg-info in the checkout), with the venv's pinned setuptools (no download)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = ["cp", "-r", str(ROOT / name), str(source / name)]
        subprocess.run(copy, check=True)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    (path,) = out.glob("mpl_tf-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed into a directory of its own (its dependencies are the venv's)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--disable-pip-version-check", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    return target


def _run(installed, cwd, *command):
    env = {**os.environ, "PYTHONPATH": str(installed), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def test_wheel_holds_the_package_the_recipes_and_the_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in ROOT.glob("mpl_tf/**/*.py")}
    assert modules and modules <= names
    recipes = {f"mpl_tf/flags/{p.name}" for p in ROOT.glob("flags/*.cfg")}
    assert "mpl_tf/flags/two_moons.cfg" in recipes and recipes <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
    info = f"mpl_tf-{mpl_tf.__version__}.dist-info"
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    for command, function in (("train", "train"), ("evaluate", "evaluate"),
                              ("predict", "predict"), ("export", "export"),
                              ("publish", "publish")):
        assert f"mpl-tf-{command} = mpl_tf.commands:{function}" in entry_points
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode().splitlines()
    requires = [line.split(": ", 1)[1] for line in metadata if line.startswith("Requires-Dist")
                and "extra ==" not in line]
    assert requires == _runtime_pins()
    assert f"Version: {mpl_tf.__version__}" in metadata


def test_installed_train_command_runs_a_packaged_recipe_elsewhere(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no flags/ here: the recipe must come from the package
    where = _run(installed, elsewhere, sys.executable, "-c",
                 "import mpl_tf; print(mpl_tf.__file__)")
    assert where.stdout.startswith(str(installed))
    done = _run(installed, elsewhere, str(installed / "bin" / "mpl-tf-train"),
                "--recipe=two_moons", "--model_dir=run", "--train_steps=200", "--log_every=100")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((elsewhere / "run" / "results.json").read_text())
    assert results["dataset"] == "two_moons" and results["train_steps"] == 200
    versions = json.loads((elsewhere / "run" / "versions.json").read_text())
    assert versions["mpl_tf"] == mpl_tf.__version__
    card = (elsewhere / "run" / "export" / "hub" / "MODEL_CARD.md").read_text()
    assert f"by mpl_tf {mpl_tf.__version__}," in card


def test_installed_train_command_refuses_an_unknown_recipe(installed, tmp_path):
    done = _run(installed, tmp_path, str(installed / "bin" / "mpl-tf-train"),
                "--recipe=cifar10", "--model_dir=run")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: --recipe=cifar10 is not a recipe; valid recipes: cifar10_4000, "
        "cifar10_4000_50k, digits, fashion_mnist, folder, imagenet_10pct, svhn_1000, "
        "two_moons, two_moons_6"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(commands.COMMANDS))
def test_each_command_runs_its_modules_main(command, monkeypatch):
    """A console command is its module's main(argv): same arguments, same exit status (so
    --help, whatever the module makes of it, is the same both ways)."""
    module = importlib.import_module(commands.COMMANDS[command])
    seen = []
    monkeypatch.setattr(module, "main", lambda argv: seen.append(argv) or 7)
    monkeypatch.setattr(sys, "argv", [command, "--flag=value"])
    function = getattr(commands, command[len("mpl-tf-"):])
    with pytest.raises(SystemExit) as exit_info:
        function()
    assert exit_info.value.code == 7 and seen == [[command, "--flag=value"]]
