"""Ends a multi-worker process that waits for workers that never start (see
distribute._multi_worker_strategy, which runs it): `python -m mpl_tf.durable.watchdog PID
SECONDS TASK PEERS_JSON`.

It waits for its stdin to close (the strategy started, or the process ended: it exits quietly).
After SECONDS, or on SIGINT/SIGTERM (Ctrl-C reaches the whole process group; TensorFlow
swallows it in the waiting process), it writes one line naming the peers whose port does not
accept a connection and kills PID, which is stuck in TensorFlow's C++ and cannot stop itself.
It imports no TensorFlow, so it starts in a fraction of a second.
"""

import json
import os
import select
import signal
import socket
import sys


class _Stopped(Exception):
    pass


def _stop(signum, frame):
    raise _Stopped(signum)


def _listening(address, timeout_seconds=2):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds):
            return True
    except (OSError, ValueError):
        return False


def main(argv):
    pid, seconds, task, peers = int(argv[1]), float(argv[2]), argv[3], json.loads(argv[4])
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    try:
        if select.select([sys.stdin], [], [], seconds)[0]:
            return 0
        why = f"waited {seconds:g} s"
    except _Stopped as stopped:
        why = f"was stopped ({signal.Signals(stopped.args[0]).name}) while waiting"
    missing = ", ".join(f"{name} ({address})" for name, address in peers
                        if not _listening(address)) or "the other workers"
    sys.stderr.write(f"error: {task} {why} for {missing} to start (TF_CONFIG); start every "
                     "worker with the same cluster, or raise --multi_worker_timeout\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
