"""A Ray cluster of several nodes plus an ``mlflow server``, all on 127.0.0.1, in one process.

Meant to run in a SUBPROCESS of the test session (the session-wide Ray runtime stays intact):
:func:`run_in_subprocess` starts ``python -c`` with this directory and ``platform/`` on the
path, calls ``multinode_helpers.<entry>(json_args)`` there and returns the JSON the entry
prints last. Everything the subprocess started is listed in that JSON (``started``:
``[pid, create_time]`` pairs), so the caller can check that none of it outlives the run.

:func:`cluster_and_server` is the reusable part: the multi-node smoke test runs a trivial Tune
sweep on it today; the real ``medxfer sweep`` will run on the same setup (``--address
cluster.address --tracking-uri server.uri``).
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
                       mlflow_timeout: float = 120.0):
    """Start ``num_nodes`` Ray nodes and an ``MlflowServer``; connect the driver; yield.

    Yields ``(cluster, server, started)``; on exit ``started`` holds ``[pid, create_time]`` of
    every process the context started (Ray's processes, trial workers, the server and its
    watchdog) so the caller can report them. On exit: driver disconnects, nodes are removed, the server stops, and any process
    still alive among ``started`` is stopped by PID (never ``ray stop``).

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


def smoke_sweep(args_json: str) -> dict:
    """4 trials of a trivial function trainable on a 2-node cluster, logged to the server."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    args = json.loads(args_json)
    workdir = Path(args["workdir"])
    t0 = time.monotonic()
    timings = {}

    def trainable(config):
        import ray

        time.sleep(config["sleep"])  # overlap, so the 2 concurrent trials occupy both nodes
        tune.report({"score": config["x"] * 2.0, "node": ray.get_runtime_context().get_node_id(),
                     "pid": os.getpid()})

    with cluster_and_server(workdir, num_nodes=2) as (cluster, server, started):
        timings["setup_s"] = round(time.monotonic() - t0, 1)
        import ray

        nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"CPU": 1}),
            param_space={"x": tune.grid_search([1, 2, 3, 4]), "sleep": args.get("sleep", 2.0)},
            tune_config=tune.TuneConfig(metric="score", mode="max"),
            run_config=tune.RunConfig(
                name="smoke", storage_path=str(workdir / "ray_results"), verbose=0,
                callbacks=[MLflowLoggerCallback(tracking_uri=server.uri,
                                                experiment_name="multinode-smoke",
                                                save_artifact=False)]),
        )
        t1 = time.monotonic()
        grid = tuner.fit()
        timings["sweep_s"] = round(time.monotonic() - t1, 1)
        trials = [{"x": r.config["x"], "score": r.metrics.get("score"),
                   "node": r.metrics.get("node"), "error": str(r.error) if r.error else None}
                  for r in grid]

        from mlflow import MlflowClient

        c = MlflowClient(tracking_uri=server.uri)
        exp = c.get_experiment_by_name("multinode-smoke")
        runs = c.search_runs([exp.experiment_id]) if exp else []
        mlflow_runs = [{"status": r.info.status, "params": dict(r.data.params),
                        "metrics": dict(r.data.metrics)} for r in runs]
        uri = server.uri
        t2 = time.monotonic()
    timings["teardown_s"] = round(time.monotonic() - t2, 1)
    timings["total_s"] = round(time.monotonic() - t0, 1)
    return {"nodes": nodes, "trials": trials, "mlflow_runs": mlflow_runs, "uri": uri,
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
        raise AssertionError(f"{entry} did not finish within {timeout:.0f} s:\n"
                             f"stdout tail:\n{out[-4000:]}\nstderr tail:\n{err[-6000:]}")
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
