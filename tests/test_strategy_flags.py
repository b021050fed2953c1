"""Bad distribution and run-directory input fails before training, in one line."""

import json

import pytest
from command_testing import main_subprocess

from mpl_tf import config
from mpl_tf.durable import strategies
from mpl_tf.errors import ConfigError
from mpl_testing import two_cpu_mirrored_strategy


def run_main(tmp_path, *args, env=None):
    return main_subprocess("--flagfile=flags/two_moons.cfg", f"--model_dir={tmp_path / 'run'}",
                           *args, env=env, timeout=300)


@pytest.mark.parametrize("args,env,message", [
    (["--strategy=tpu"], None, "--strategy=tpu needs --tpu=ADDRESS"),
    # Nothing listens there (TensorFlow's own connect would wait forever) / no such TPU name.
    (["--strategy=tpu", "--tpu=grpc://127.0.0.1:1"], None,
     "--tpu=grpc://127.0.0.1:1: cannot reach the TPU"),
    (["--tpu=no-such-tpu"], None, "--tpu=no-such-tpu: cannot reach the TPU"),
    (["--strategy=multi_worker"], {"TF_CONFIG": ""}, "--strategy=multi_worker needs TF_CONFIG"),
    (["--strategy=auto"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is malformed"),
    (["--strategy=multi_worker"], {"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}})},
     "does not name one of the 1 workers"),
])
def test_bad_strategy_input_fails_in_one_line(tmp_path, args, env, message):
    done = run_main(tmp_path, *args, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


def test_an_unwritable_model_dir_fails_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = main_subprocess("--flagfile=flags/two_moons.cfg", f"--model_dir={blocker / 'run'}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --model_dir={blocker / 'run'} lies under a file ({blocker}), not a directory"]


def test_the_flag_offers_exactly_the_registered_strategies():
    assert config.STRATEGIES == ("auto", *strategies.BUILDERS)


def test_global_batches_must_split_evenly_over_replicas():
    strategy = two_cpu_mirrored_strategy()
    strategies.check_batch_sizes(strategy, 12, 64)
    with pytest.raises(ConfigError, match="--labeled_batch_size=13 is not divisible by the 2"):
        strategies.check_batch_sizes(strategy, 13, 64)
    with pytest.raises(ConfigError, match="--jit_compile works on one device"):
        strategies.check_jit(strategy, True)
