"""A sweep whose driver is SIGKILLed resumes (``run_sweep(resume=True)``, what ``medxfer sweep
--resume`` calls): only unfinished trials run and MLflow ends with every trial recorded exactly
once. Both drivers are ``tests/toy_trainable.py`` run as a script (the toy trainable is a test
fixture, not a CLI choice), each with its own local Ray runtime, so the session's runtime stays
intact; the Ray helpers the killed driver leaves behind are stopped by PID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_helpers import kill_tree
import yaml

from medxfer.tracking import schema

from sweep_helpers import experiment, steps, sweep_runs

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "toy_trainable.py"
EPOCHS = 2


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "platform"), *filter(None, [env.get("PYTHONPATH")])])
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"   # save the experiment state often (small sweep)
    env["RAY_DEDUP_LOGS"] = "0"
    return env


def _finished(uri: str, name: str) -> set[str]:
    try:
        _, children = sweep_runs(uri, name)
    except Exception:  # store or experiment not created yet
        return set()
    return {c.data.tags[schema.TRIAL_ID] for c in children if c.info.status == "FINISHED"}


def _saved_terminated(sweep_dir: Path) -> set[str]:
    """Trial ids that Tune's saved experiment state holds as TERMINATED: the trials a restore
    will not run again (``experiment_state-*.json``: ``trial_data`` = [trial JSON, metadata])."""
    done = set()
    for f in sweep_dir.glob("experiment_state-*.json"):
        try:
            trials = json.loads(f.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):
            continue  # being replaced by the next save
        for trial_json, _ in trials:
            t = json.loads(trial_json)
            if t.get("status") == "TERMINATED":
                done.add(t["trial_id"])
    return done


@pytest.mark.timeout(600)
def test_killed_driver_resumes_unfinished_trials_once(tmp_path, tracking_uri):
    log = tmp_path / "attempts.jsonl"
    raw = experiment(
        {"algorithm": "grid", "max_concurrent": 1, "max_failures": 0,
         "storage_path": str(tmp_path / "ray_results"),
         "space": {"train.lr": {"grid": [0.1, 0.05, 0.02, 0.01, 0.005]}}},
        train={"epochs": EPOCHS})
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    toy = json.dumps({"n": 192, "epoch_seconds": 2.0, "log": str(log)})
    cmd = [sys.executable, str(DRIVER), str(cfg), "--name", "kill", "--toy", toy,
           "--tracking-uri", tracking_uri, "--num-cpus", "2"]
    sweep_dir = tmp_path / "ray_results" / "kill"
    # Create the store before two processes (driver, this poller) open it (NOTES: table race).
    from medxfer.tracking.store import client

    client(tracking_uri).search_experiments()
    out1 = open(tmp_path / "driver1.log", "w")
    driver = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=out1,
                              stderr=subprocess.STDOUT)
    try:
        # Kill once two trials are finished in MLflow AND in Tune's saved state (written every
        # second here: TUNE_GLOBAL_CHECKPOINT_S=1), so the resume has a known set to skip.
        deadline = time.monotonic() + 300
        while True:
            finished = _finished(tracking_uri, "kill")
            if len(finished) >= 2 and finished <= _saved_terminated(sweep_dir):
                break
            assert driver.poll() is None, (tmp_path / "driver1.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"not two finished trials in MLflow and Tune's state in time: {finished}, "
                f"{_saved_terminated(sweep_dir)}")
            time.sleep(0.2)
    finally:
        kill_tree(driver)
        out1.close()
    done_before = _finished(tracking_uri, "kill")
    assert 2 <= len(done_before) < 5
    lines_before = len(log.read_text().splitlines())

    resumed = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "sweep kill: 5 trials (0 errored)" in resumed.stdout

    parents, children = sweep_runs(tracking_uri, "kill")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    ids = [c.data.tags[schema.TRIAL_ID] for c in children]
    assert len(ids) == 5 and len(set(ids)) == 5
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags[schema.PARENT_RUN_ID] == parents[0].info.run_id
        for key in ("val_loss", "test_auc"):
            assert steps(tracking_uri, c.info.run_id, key) == list(range(1, EPOCHS + 2))
    # Only the unfinished trials ran after the restore.
    after = [json.loads(line) for line in log.read_text().splitlines()[lines_before:]]
    rerun = {a["trial_id"] for a in after}
    assert rerun and not (rerun & done_before), (rerun, done_before)
    assert rerun == set(ids) - done_before
