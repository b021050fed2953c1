"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 run 3 MPL steps through
mpl_tf.loop, agree with each other and with one device on the same global batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mpl_tf import loop
from mpl_tf.train import build_model
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
