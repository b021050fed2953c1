"""tf.distribute plumbing: the strategy a run trains under, and the two replica-context
operations every training step needs (summing over replicas, updating variables in place)."""

import json
import os
import socket
import subprocess
import sys

import tensorflow as tf

from mpl_tf.durable import quiet
from mpl_tf.errors import ConfigError


def strategy(name, tpu_address=None, wait_seconds=600):
    """The strategy `--strategy` names (one of BUILDERS, or auto); call before any other
    TensorFlow work (multi-worker collectives must be configured at start-up).

    auto: TPU if --tpu is given, several workers if TF_CONFIG names them, all local GPUs if
    there are several, else the default.
    """
    if name == "auto":
        if tpu_address:
            name = "tpu"
        elif len(_cluster_workers()) > 1:
            name = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name not in BUILDERS:
        raise ConfigError(f"--strategy={name} is not valid; valid values: auto, "
                          f"{', '.join(BUILDERS)}")
    return BUILDERS[name](tpu_address=tpu_address, wait_seconds=wait_seconds)


def _default(tpu_address, wait_seconds):
    """One device."""
    del tpu_address, wait_seconds
    return tf.distribute.get_strategy()


def _mirrored(tpu_address, wait_seconds):
    """All local GPUs, else all logical CPUs."""
    del tpu_address, wait_seconds
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def _multi_worker(tpu_address, wait_seconds):
    """Every worker in TF_CONFIG."""
    del tpu_address
    if not _cluster_workers():
        raise ConfigError("--strategy=multi_worker needs TF_CONFIG naming the workers, e.g. "
                          '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                          '"task": {"type": "worker", "index": 0}}')
    return _multi_worker_strategy(wait_seconds)


def _cluster_workers():
    """The worker addresses in TF_CONFIG ([] without it); a malformed TF_CONFIG is an error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return []
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG is malformed ({type(e).__name__}: {e}); expected "
                          '{"cluster": {"worker": [...]}, "task": {"type": "worker", '
                          '"index": N}}') from None
    if not isinstance(workers, list) or not workers:
        raise ConfigError("TF_CONFIG cluster.worker must be a non-empty list of host:port")
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG task {task} does not name one of the "
                          f"{len(workers)} workers")
    return workers


def _multi_worker_strategy(wait_seconds):
    """MultiWorkerMirroredStrategy, whose constructor blocks in TensorFlow's C++, holding the
    GIL and with TensorFlow's own SIGINT/SIGTERM handlers, until every worker has connected: a
    peer that never starts hangs it forever, deaf to Ctrl-C, and no Python thread can run. So a
    small watchdog process (mpl_tf/durable/watchdog.py) ends it, with one line naming the
    workers that are not listening, after `wait_seconds` or when Ctrl-C (or a SIGTERM to the
    process group) reaches it. Nothing is written before the strategy exists."""
    me, peers = _task_and_peers()
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "mpl_tf.durable.watchdog", str(os.getpid()), str(wait_seconds),
         me, json.dumps(peers)], stdin=subprocess.PIPE, stderr=quiet.real_stderr(), env=env)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    finally:
        watchdog.stdin.close()  # started (or failed): the watchdog exits quietly
        watchdog.wait()


def _task_and_peers():
    """("worker I", [["worker J", "host:port"], ...]): this task and every other one."""
    config = json.loads(os.environ["TF_CONFIG"])
    own = (config["task"]["type"], int(config["task"]["index"]))
    tasks = [(job, i, address) for job, addresses in config["cluster"].items()
             for i, address in enumerate(addresses)]
    return (f"{own[0]} {own[1]}",
            [[f"{job} {i}", address] for job, i, address in tasks if (job, i) != own])


def _tpu(tpu_address, wait_seconds):
    """The TPU at --tpu."""
    del wait_seconds
    address = tpu_address
    if not address:
        raise ConfigError("--strategy=tpu needs --tpu=ADDRESS (a TPU name, grpc://host:port, "
                          "or 'local' on a TPU VM)")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu="" if address == "local" else address)
        _check_reachable(resolver.master())
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError, OSError) as e:  # OSError: URLError too
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--tpu={address}: cannot reach the TPU ({reason})") from None
    return tf.distribute.TPUStrategy(resolver)


# --strategy name: the function that builds it from (tpu_address, wait_seconds), by keyword.
# A new strategy is a function here, a line here and its name in config.STRATEGIES (the flag is
# defined before TensorFlow is imported; tests/test_strategy_flags.py checks the two agree).
BUILDERS = {"default": _default, "mirrored": _mirrored, "multi_worker": _multi_worker,
            "tpu": _tpu}


def _check_reachable(master, timeout_seconds=15):
    """Raises OSError unless a grpc://host:port master accepts a TCP connection: TensorFlow's
    own connect waits forever on an address where nothing listens."""
    if not master.startswith("grpc://"):
        return  # a local TPU VM: nothing to dial
    host, _, port = master[len("grpc://"):].rpartition(":")
    try:
        port = int(port)
    except ValueError:
        raise OSError(f"{master} is not grpc://host:port") from None
    with socket.create_connection((host.strip("[]"), port), timeout=timeout_seconds):
        pass


def is_chief(a_strategy):
    """Whether this process writes the run directory (the only one, but under multi-worker)."""
    resolver = getattr(a_strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def check_jit(a_strategy, jit_compile):
    """XLA compiles the step on one device (TPUs always compile); the replicated step's
    cross-replica updates do not compile."""
    if (jit_compile and a_strategy.num_replicas_in_sync > 1
            and not isinstance(a_strategy, tf.distribute.TPUStrategy)):
        raise ConfigError(f"--jit_compile works on one device; this strategy has "
                          f"{a_strategy.num_replicas_in_sync} replicas")


def check_batch_sizes(a_strategy, labeled, unlabeled):
    """Global batches must split evenly over replicas (equal per-replica batches)."""
    replicas = a_strategy.num_replicas_in_sync
    for flag, size in (("--labeled_batch_size", labeled),
                       ("the unlabeled batch (--unlabeled_batch_size, or --uda_ratio x "
                        "--labeled_batch_size)", unlabeled)):
        if size % replicas:
            raise ConfigError(f"{flag}={size} is not divisible by the {replicas} replicas; "
                              f"use a multiple of {replicas}")


def replica_sum(values):
    """Sums a tensor (or a list of them) over replicas; identity without a strategy."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


def tf_variable(variable):
    """The tf.Variable (possibly a MirroredVariable) behind a Keras variable."""
    return variable.value if hasattr(variable, "path") else variable


def update_each(update_fn, variables, per_variable_args, shared_args=()):
    """Calls `update_fn(device_copy, *per_variable_args[i], *shared_args)` for every device copy
    of every variable, from a replica context.

    Distributed variables cannot be assigned per replica; `merge_call` + `extended.update` is
    the route Keras' own optimizers take. Arguments must be identical on every replica.
    """

    def merged(strategy, per_variable_args, shared_args):
        for variable, args in zip(variables, per_variable_args):
            strategy.extended.update(tf_variable(variable), update_fn,
                                     args=(*args, *shared_args), group=False)

    tf.distribute.get_replica_context().merge_call(
        merged, args=(list(per_variable_args), tuple(shared_args)))
