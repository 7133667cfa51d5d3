"""``medxfer.tracking.server.MlflowServer``: serves, fails clearly, never outlives its starter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mlflow import MlflowClient

from medxfer.tracking.server import MlflowServer, MlflowServerError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids, timeout=30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _group_members(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(d))
    return out


def test_shared_server_logs_runs(mlflow_server):
    assert mlflow_server.uri.startswith("http://127.0.0.1:")
    c = MlflowClient(tracking_uri=mlflow_server.uri)
    exp = c.create_experiment("test_tracking_server/roundtrip")
    run = c.create_run(exp, tags={"k": "v"})
    c.log_metric(run.info.run_id, "m", 0.5, step=3)
    c.set_terminated(run.info.run_id)
    back = c.get_run(run.info.run_id)
    assert back.data.metrics == {"m": 0.5} and back.data.tags["k"] == "v"
    assert back.info.status == "FINISHED"


@pytest.mark.parametrize("host,ok", [("127.0.0.1", True), ("localhost", True),
                                     ("10.1.2.3:5000", True), ("mlflow.example.org", False)])
def test_server_checks_host_header(mlflow_server, host, ok):
    """MLflow 3.17's DNS-rebinding guard: localhost and private IPs pass by default, a DNS name
    must be listed with --allowed-hosts (clusters/README.md)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{mlflow_server.uri}/api/2.0/mlflow/experiments/search"
                                 "?max_results=1", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    assert (status == 200) is ok, status


def test_rejects_non_loopback_host(tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        MlflowServer(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "a", host="0.0.0.0")


def test_startup_failure_names_log_tail(tmp_path):
    server = MlflowServer(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "a",
                          extra_args=["--no-such-flag"], startup_timeout=60)
    with pytest.raises(MlflowServerError, match="exited with code") as err:
        server.start()
    assert "no-such-flag" in str(err.value)  # the server's own complaint, from its log
    assert _wait_gone(server.pids, 10) == []


_STARTER = textwrap.dedent("""
    import json, os, signal, sys
    from medxfer.tracking.server import MlflowServer
    s = MlflowServer(sys.argv[1], sys.argv[2]).start()
    print(json.dumps({"pids": s.pids, "pgid": s.proc.pid, "uri": s.uri}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # die without any cleanup
""")


def test_server_stops_when_starter_is_killed(tmp_path):
    """``kill -9`` of the process that started the server: the watchdog stops the server."""
    proc = subprocess.run([sys.executable, "-c", _STARTER, f"sqlite:///{tmp_path / 's.db'}",
                           str(tmp_path / "a")], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    left = _wait_gone(info["pids"], 30)
    assert left == [], f"still alive after the starter died: {left}"
    assert _group_members(info["pgid"]) == []  # uvicorn and its workers too
