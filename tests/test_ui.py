"""`medxfer ui`: the MLflow UI for the configured store, on 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from medxfer.tracking.store import ensure_experiment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store_on_loopback(tracking_uri):
    ensure_experiment(tracking_uri, "benchmark/ui-check")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "medxfer.cli", "ui", "--port", str(port),
                             "--tracking-uri", tracking_uri], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = (f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get-by-name"
                       "?experiment_name=benchmark/ui-check")
                body = urllib.request.urlopen(url, timeout=2).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert body is not None, proc.stdout.read().decode()[-2000:] if proc.poll() else "timeout"
        assert '"name": "benchmark/ui-check"' in body or '"name":"benchmark/ui-check"' in body
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                                   text=True).stdout
        assert listening.strip() and all("127.0.0.1:" in line for line in listening.splitlines())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
