"""A Ray cluster of several nodes plus an ``mlflow server``, all on 127.0.0.1, in one process.

Meant to run in a SUBPROCESS of the test session (the session-wide Ray runtime stays intact):
:func:`run_in_subprocess` starts ``python -c`` with this directory and ``platform/`` on the
path, calls ``multinode_helpers.<entry>(json_args)`` there and returns the JSON the entry
prints last. Everything the subprocess started is listed in that JSON (``started``:
``[pid, create_time]`` pairs), so the caller can check that none of it outlives the run.

:func:`cluster_and_server` is the reusable part; :func:`medxfer_sweep` runs a real medxfer
sweep on it (``run_sweep(..., address=cluster.address, tracking_uri=server.uri)``, what
``medxfer sweep --address ... --tracking-uri ...`` does) with the launcher trainable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLATFORM = HERE.parent / "platform"
RESULT_MARK = "MULTINODE-RESULT "
LOOPBACK = "127.0.0.1"


# ------------------------------------------------------------------ in the subprocess
def _descendants() -> list[int]:
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True)]


def _identities(pids) -> list[list]:
    """``[pid, create_time]`` of each PID (create_time guards against PID reuse later)."""
    import psutil

    out = []
    for pid in sorted(set(pids)):
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append([pid, psutil.Process(pid).create_time()])
    return out


def _stop_pids(pids, grace: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace``, the processes of ``pids`` still alive."""
    import psutil

    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)
    return [p.pid for p in alive]


@contextlib.contextmanager
def cluster_and_server(workdir: str | os.PathLike, *, num_nodes: int = 2,
                       cpus_per_node: int = 1, trial_slots_per_node: int = 1,
                       object_store_memory: int = 100 * 1024 * 1024,
                       mlflow_timeout: float = 120.0, connect: bool = True):
    """Start ``num_nodes`` Ray nodes and an ``MlflowServer``; connect the driver (unless
    ``connect=False``: then the caller joins via ``cluster.address``, e.g. ``run_sweep(...,
    address=cluster.address)``, and must disconnect before the context exits); yield.

    Yields ``(cluster, server, started)``; on exit ``started`` holds ``[pid, create_time]`` of
    every process the context started (Ray's processes, trial workers, the server and its
    watchdog) so the caller can report them. On exit: driver disconnects, nodes are removed, the
    server stops, and any process still alive among ``started`` is stopped by PID (never
    ``ray stop``).

    The MLflow server starts in a thread while the Ray nodes come up (each takes 10-20 s here).
    All addresses are 127.0.0.1; Ray's temp dir is private to this run (``RAY_TMPDIR``), so the
    ``ray_current_cluster`` file it writes cannot redirect another session's ``ray.init``.
    """
    import ray
    from ray.cluster_utils import Cluster

    from medxfer.tracking.server import MlflowServer

    workdir = Path(workdir)
    started: list[int] = []
    server = MlflowServer(f"sqlite:///{workdir / 'mlflow.db'}", workdir / "mlartifacts",
                          startup_timeout=mlflow_timeout, log_path=workdir / "mlflow.log")
    server_error: list[BaseException] = []

    def start_server():
        try:
            server.start()
        except BaseException as e:  # re-raised in the main thread
            server_error.append(e)

    t = threading.Thread(target=start_server, daemon=True)
    t.start()
    cluster = None
    try:
        node_args = {"num_cpus": cpus_per_node, "resources": {"trial_slot": trial_slots_per_node},
                     "object_store_memory": object_store_memory,
                     "node_ip_address": LOOPBACK, "include_dashboard": False}
        cluster = Cluster(initialize_head=True, head_node_args=dict(node_args))
        for _ in range(num_nodes - 1):
            cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        if connect:
            ray.init(address=cluster.address, log_to_driver=False)
        t.join()
        started.extend(server.pids)
        if server_error:
            raise server_error[0]
        yield cluster, server, started
    finally:
        t.join()
        started.extend(p for p in _descendants() if p not in started)
        identities = _identities(started)  # before stopping, while they exist
        started.clear()
        started.extend(identities)
        with contextlib.suppress(Exception):
            ray.shutdown()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.shutdown()
        server.stop()
        _stop_pids([p for p, _ in started if p not in server.pids])


LRS = [0.2, 0.1, 0.05, 0.02]


def sweep_experiment(data_root: str | os.PathLike, *, epochs: int = 2) -> dict:
    """The multi-node sweep: ``finetune`` on ``tiny_cnn`` from scratch, tiny synthetic data,
    a grid over 4 learning rates, 2 trials at a time (one per 1-CPU node)."""
    return {
        "method": "finetune",
        "data": {"root": str(data_root), "flag": "synthpneumonia", "source": "scratch",
                 "n_train_per_class": None, "n_val_per_class": None},
        "model": {"backbone": "tiny_cnn"},
        "train": {"epochs": epochs, "batch_size": 8, "lr": 0.05, "scheduler": "none"},
        "search": {"algorithm": "grid", "metric": "val_loss", "mode": "min",
                   "max_concurrent": 2, "space": {"train.lr": {"grid": list(LRS)}}},
    }


def medxfer_sweep(args_json: str) -> dict:
    """A real ``run_sweep`` (launcher trainable: the ``finetune`` method) on a 2-node cluster,
    with ``address=`` the cluster and ``tracking_uri=`` the HTTP server; returns what the
    server holds afterwards."""
    from medxfer.data.synth import synthesize
    from medxfer.tracking import schema
    from medxfer.tune.experiment import experiment_from_dict
    from medxfer.tune.sweep import run_sweep
    from sweep_helpers import steps, sweep_runs

    args = json.loads(args_json)
    workdir = Path(args["workdir"])
    t0 = time.monotonic()
    timings = {}
    data = workdir / "data"
    synthesize(data, size=28, n_per_class=int(args.get("n_per_class", 8)),
               modalities=["synthpneumonia"])
    exp = experiment_from_dict(sweep_experiment(data, epochs=int(args.get("epochs", 2))))
    name = "multinode"
    # connect=False: run_sweep itself joins the cluster through ``address=`` (the path
    # ``medxfer sweep --address`` takes) and disconnects when done.
    with cluster_and_server(workdir, num_nodes=2, connect=False) as (cluster, server, started):
        timings["setup_s"] = round(time.monotonic() - t0, 1)
        nodes = sorted(n.node_id for n in cluster.list_all_nodes())
        t1 = time.monotonic()
        res = run_sweep(exp, name=name, tracking_uri=server.uri, address=cluster.address,
                        verbose=0, storage_path=str(workdir / "ray_results"))
        timings["sweep_s"] = round(time.monotonic() - t1, 1)

        parents, children = sweep_runs(server.uri, name)
        metric_keys = ("train_loss", "val_loss", "val_auc", "test_auc")
        runs = [{"run_id": c.info.run_id, "status": c.info.status, "tags": dict(c.data.tags),
                 "params": dict(c.data.params), "metrics": dict(c.data.metrics),
                 "steps": {k: steps(server.uri, c.info.run_id, k)
                           for k in metric_keys + ("system/cpu_percent",)}}
                for c in children]
        parent = [{"run_id": p.info.run_id, "status": p.info.status, "tags": dict(p.data.tags),
                   "metrics": dict(p.data.metrics)} for p in parents]
        # Every run on the server, in any experiment: a trial process writing to MLflow (it
        # must not: the driver's callback is the only writer) would show up here.
        from mlflow import MlflowClient

        c = MlflowClient(tracking_uri=server.uri)
        exp_ids = [e.experiment_id for e in c.search_experiments()]
        all_runs = [[r.info.run_id, r.data.tags.get(schema.KIND)]
                    for r in c.search_runs(exp_ids, max_results=1000)]
        uri = server.uri
        t2 = time.monotonic()
    timings["teardown_s"] = round(time.monotonic() - t2, 1)
    timings["total_s"] = round(time.monotonic() - t0, 1)
    return {"nodes": nodes, "uri": uri, "address": cluster.address,
            "result": {"n_trials": res.n_trials, "n_errored": res.n_errored,
                       "tracking_uri": res.tracking_uri, "parent_run_id": res.parent_run_id,
                       "best": res.best},
            "parents": parent, "children": runs, "all_runs": all_runs,
            "node_tag": schema.NODE_ID,
            "started": started, "timings": timings}


def _main(entry: str, args_json: str) -> None:
    result = globals()[entry](args_json)
    print(RESULT_MARK + json.dumps(result), flush=True)


# ------------------------------------------------------------------ in the test process
def run_in_subprocess(entry: str, args: dict, *, timeout: float = 240.0) -> dict:
    """Run ``multinode_helpers.<entry>`` in a fresh interpreter with a private Ray temp dir."""
    ray_tmp = tempfile.mkdtemp(prefix="mxray-", dir="/tmp")  # short: Ray's socket paths
    env = dict(os.environ)
    for var in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)  # never reach the session's runtime or store
    env["RAY_TMPDIR"] = ray_tmp
    # Ray turns 127.0.0.1 in an address into the machine's "reachable" IP (so a driver would
    # dial 192.0.2.x while the GCS listens on loopback only). This switch, meant for
    # single-machine clusters on macOS/Windows, makes Ray's node IP the loopback address.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(PLATFORM), env.get("PYTHONPATH", "")])
    env.setdefault("RAY_DEDUP_LOGS", "0")
    code = f"import multinode_helpers as m; m._main({entry!r}, {json.dumps(args)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(args.get("workdir", ray_tmp)), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(
            f"{entry} did not finish within {timeout:.0f} s:\n"
            f"stdout tail:\n{out[-4000:]}\nstderr tail:\n{err[-6000:]}") from None
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"{entry} failed (exit {proc.returncode}):\n"
                             f"stdout tail:\n{out[-4000:]}\nstderr tail:\n{err[-6000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, the subprocess's process group (its Ray nodes included)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def alive(procs) -> list[list]:
    """``[pid, create_time]`` pairs among ``procs`` that still run (zombies and reused PIDs
    count as gone)."""
    import psutil

    out = []
    for pid, created in procs:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - created) < 0.01:
                out.append([pid, created])
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(procs, timeout: float = 20.0) -> list[list]:
    deadline = time.monotonic() + timeout
    left = alive(procs)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = alive(left)
    return left
