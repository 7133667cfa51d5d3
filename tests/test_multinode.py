"""Multi-node test: 2 Ray nodes + an ``mlflow server`` on 127.0.0.1, a real 4-trial medxfer
sweep (issue 5, "Done when").

Runs in a subprocess (``multinode_helpers.run_in_subprocess``) so the session-wide Ray runtime
stays intact. The subprocess synthesizes tiny MedMNIST-layout data, starts the cluster (2 nodes
of 1 CPU) and the server, and calls ``run_sweep(address=cluster.address,
tracking_uri=server.uri)``: the configured method, ``finetune`` on ``tiny_cnn``, a grid over 4
learning rates, 2 trials at a time, 2 epochs each. Each child run's ``medxfer.node_id`` tag
(the trial process's Ray node) shows where it ran.
"""

from __future__ import annotations

import time

import pytest
from multinode_helpers import LRS, run_in_subprocess, wait_gone

pytestmark = pytest.mark.slow

EPOCHS = 2
METRICS = ("train_loss", "val_loss", "val_auc", "test_auc")


def test_medxfer_sweep_spans_two_nodes_and_logs_to_server(tmp_path):
    t0 = time.monotonic()
    res = run_in_subprocess("medxfer_sweep", {"workdir": str(tmp_path), "epochs": EPOCHS},
                            timeout=300)
    wall = time.monotonic() - t0

    assert len(res["nodes"]) == 2
    r = res["result"]
    assert res["uri"].startswith("http://127.0.0.1:") and r["tracking_uri"] == res["uri"]
    assert r["n_trials"] == 4 and r["n_errored"] == 0, r

    # One parent run, finished, with the sweep's ground-truth row.
    (parent,) = res["parents"]
    assert parent["status"] == "FINISHED" and parent["run_id"] == r["parent_run_id"]
    assert parent["metrics"]["trials"] == 4.0 and parent["metrics"]["trials_errored"] == 0.0
    assert r["best"]["method"] == "finetune" and 0.0 <= r["best"]["value"] <= 1.0

    # 4 child runs under it, one per learning rate, every epoch logged (+ the selected step).
    children = res["children"]
    assert len(children) == 4, [c["tags"].get("medxfer.trial_id") for c in children]
    assert len({c["tags"]["medxfer.trial_id"] for c in children}) == 4
    assert sorted(float(c["params"]["lr"]) for c in children) == sorted(LRS)
    for c in children:
        t = c["tags"]
        assert c["status"] == "FINISHED"
        assert t["mlflow.parentRunId"] == parent["run_id"]
        assert t["medxfer.kind"] == "trial" and t["medxfer.method"] == "finetune"
        assert t["medxfer.arch"] == "tiny_cnn" and t["medxfer.target"] == "synthpneumonia"
        for key in METRICS[:3]:
            assert c["steps"][key] == list(range(1, EPOCHS + 2)), (key, c["steps"])
        assert c["steps"]["test_auc"] == [EPOCHS + 1]  # test metrics: the selected model only
        # the launcher reports the selected model itself at step EPOCHS + 1 (telemetry too)
        assert c["steps"]["system/cpu_percent"] == list(range(1, EPOCHS + 2))
        assert 1 <= int(t["medxfer.selected_step"]) <= EPOCHS
        assert c["metrics"]["system/memory_rss_mb"] > 10

    # Nothing but the sweep's parent and its 4 children on the server (written from the driver
    # by run_sweep and its callback; the trial processes write nothing).
    assert sorted(k for _, k in res["all_runs"]) == ["sweep"] + ["trial"] * 4, res["all_runs"]

    # The trials ran on both nodes (the tag is the node id of the trial's process).
    used = {c["tags"].get(res["node_tag"]) for c in children}
    assert used == set(res["nodes"]), f"trials ran on {used}, cluster has {res['nodes']}"

    # Everything the subprocess started (Ray nodes, trial workers, server, watchdog) is gone.
    assert len(res["started"]) >= 5
    assert wait_gone(res["started"], 20) == []
    print(f"multinode sweep: {res['timings']}, wall {wall:.1f} s")
