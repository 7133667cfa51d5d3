"""Multi-node smoke test: 2 Ray nodes + an mlflow server on 127.0.0.1, a 4-trial sweep.

Runs in a subprocess (``multinode_helpers.run_in_subprocess``) so the session-wide Ray runtime
stays intact. Needs no other part of medxfer than ``MlflowServer``; when ``medxfer sweep``
exists, the sweep in ``multinode_helpers.smoke_sweep`` becomes a medxfer sweep on the same
``cluster_and_server`` setup.
"""

from __future__ import annotations

import time

import pytest
from multinode_helpers import run_in_subprocess, wait_gone

pytestmark = pytest.mark.slow


def test_sweep_spans_two_nodes_and_logs_to_server(tmp_path):
    t0 = time.monotonic()
    res = run_in_subprocess("smoke_sweep", {"workdir": str(tmp_path), "sleep": 1.0},
                            timeout=240)
    wall = time.monotonic() - t0

    assert len(res["nodes"]) == 2
    trials = res["trials"]
    assert len(trials) == 4 and all(t["error"] is None for t in trials), trials
    assert sorted(t["score"] for t in trials) == [2.0, 4.0, 6.0, 8.0]
    used = {t["node"] for t in trials}
    assert used == set(res["nodes"]), f"trials ran on {used}, cluster has {res['nodes']}"

    runs = res["mlflow_runs"]
    assert res["uri"].startswith("http://127.0.0.1:")
    assert len(runs) == 4, runs
    assert all(r["status"] == "FINISHED" for r in runs)
    assert sorted(int(r["params"]["x"]) for r in runs) == [1, 2, 3, 4]
    assert sorted(r["metrics"]["score"] for r in runs) == [2.0, 4.0, 6.0, 8.0]

    # Everything the subprocess started (Ray nodes, trial workers, server, watchdog) is gone.
    assert len(res["started"]) >= 5
    assert wait_gone(res["started"], 20) == []
    print(f"multinode smoke: {res['timings']}, wall {wall:.1f} s")
