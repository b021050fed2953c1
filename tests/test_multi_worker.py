"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 run 3 MPL steps through
mpl_tf.run.loop, agree with each other and with one device on the same global batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mpl_tf.run import loop
from mpl_tf.method.build import build_model
from mpl_testing import INPUT_SHAPE, NUM_CLASSES, batch, distributed_step_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_agree_with_each_other_and_with_one_device(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                        "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tests", "multi_worker_worker.py"),
             str(tmp_path / f"worker{index}.npz")], env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))

    config = distributed_step_config()
    model = build_model(config, INPUT_SHAPE, NUM_CLASSES)
    dataset = tf.data.Dataset.from_tensors(batch(config, dtype="float32")).repeat()
    loop.fit(model, tf.distribute.get_strategy(), dataset, epochs=1, steps_per_epoch=3,
             verbose=0)
    single = [w.numpy() for w in model.teacher.weights + model.student.weights]
    assert len(first.files) == len(single)
    for i, expected in enumerate(single):
        np.testing.assert_array_equal(first[f"arr_{i}"], second[f"arr_{i}"])
        np.testing.assert_allclose(first[f"arr_{i}"], expected, atol=1e-5)


def _lone_worker(tmp_path, *flags):
    """mpl_tf.main as worker 0 of two, whose worker 1 never starts; (process, both ports)."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                  "task": {"type": "worker", "index": 0}})}
    process = subprocess.Popen(
        [sys.executable, "-m", "mpl_tf.main", "--flagfile=flags/two_moons.cfg",
         f"--model_dir={tmp_path / 'run'}", "--strategy=multi_worker", *flags],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as a terminal would give it
    return process, workers


def _finish(process, timeout):
    """(stdout, stderr) of `process`, killed should it outlive `timeout` (the old hang)."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        process.kill()


def test_a_worker_whose_peer_never_starts_stops_in_one_line_naming_it(tmp_path):
    process, workers = _lone_worker(tmp_path, "--multi_worker_timeout=5")
    out, err = _finish(process, 300)
    assert process.returncode == -9 and err.splitlines() == [
        f"error: worker 0 waited 5 s for worker 1 ({workers[1]}) to start (TF_CONFIG); start "
        "every worker with the same cluster, or raise --multi_worker_timeout"]
    assert not (tmp_path / "run").exists()


def test_ctrl_c_stops_a_worker_waiting_for_its_peer(tmp_path):
    import signal
    import time

    process, workers = _lone_worker(tmp_path)
    host, port = workers[0].split(":")
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:  # its server is up: it waits
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    time.sleep(2)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the process group
    out, err = _finish(process, 60)
    assert process.returncode == -9 and err.splitlines() == [
        f"error: worker 0 was stopped (SIGINT) while waiting for worker 1 ({workers[1]}) to "
        "start (TF_CONFIG); start every worker with the same cluster, or raise "
        "--multi_worker_timeout"]
    assert not (tmp_path / "run").exists()
