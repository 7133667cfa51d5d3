"""No silent hang: the local runtime's health checks tolerate a busy machine, and a sweep whose
cluster stops answering is stopped by the driver's watchdog (``medxfer.tune.stall``), tagged
``medxfer.status=stalled``, and resumed to completion with ``--resume``.

The frozen-raylet test runs its sweep driver (``tests/toy_trainable.py`` as a script) with a
local Ray runtime of its own, freezes that runtime's raylet with SIGSTOP and stops every process
the driver started by PID (never ``ray stop``: other Ray runtimes may share the machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from medxfer.cluster_config import REPO_CLUSTERS, load_local
from medxfer.tracking import schema
from medxfer.tune.stall import StallWatch, probe_timeout
from medxfer.tune.stalled import EXIT_STALLED, SweepStalled, config_source, resume_command
from medxfer.tune.sweep import SNAPSHOT

from process_helpers import Family
from sweep_helpers import experiment, steps, sweep_runs

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "toy_trainable.py"
HEALTH_KEYS = ("health_check_initial_delay_ms", "health_check_period_ms",
               "health_check_timeout_ms", "health_check_failure_threshold")


# --------------------------------------------------------------------------- the rule


def test_stall_needs_both_silence_and_no_capacity_for_the_timeout():
    w = StallWatch(20.0, last_result=0.0)
    w.capacity(True, 10.0)
    assert not w.stalled(100.0)             # a slow epoch on a healthy cluster is no stall
    w.capacity(False, since=5.0)            # the first unanswered probe went out at t=5
    w.capacity(False, since=9.0)            # later looks keep the earliest moment
    assert w.no_capacity_since == 5.0
    assert not w.stalled(24.9)              # silent 24.9 s, no capacity for 19.9 s
    assert w.stalled(25.0)
    w.result(26.0)                          # a trial reported: the silence starts over
    assert not w.stalled(45.9) and w.stalled(46.0)
    w.capacity(True, 47.0)                  # a node answers again
    assert not w.stalled(1000.0)


def test_probe_timeout_is_a_tenth_within_5_and_60_s():
    assert probe_timeout(20) == 5.0
    assert probe_timeout(300) == 30.0
    assert probe_timeout(3600) == 60.0


def test_a_stalled_sweep_exits_3_and_a_crash_keeps_its_traceback():
    from medxfer.cli import stopped_exit_code

    assert stopped_exit_code(SweepStalled("sweep s stalled", "medxfer sweep ...")) == 3
    assert stopped_exit_code(RuntimeError("a crash")) is None


def test_resume_command_is_the_cli_line():
    cmd = resume_command("my exp.yaml", "demo-1", "sqlite:////tmp/m.db", None, 2)
    assert cmd == ("medxfer sweep 'my exp.yaml' --name demo-1 --resume --tracking-uri "
                   "sqlite:////tmp/m.db --num-cpus 2")


def test_resume_command_of_a_restored_sweep_names_its_yaml(tmp_path):
    snap = tmp_path / SNAPSHOT
    snap.write_text(json.dumps({"config": {}, "search": {}, "source": "/s/demo.yaml"}))
    assert config_source(snap) == "/s/demo.yaml"
    assert resume_command(snap, "d", "sqlite:////m.db", "ray://h:10001", None) == (
        "medxfer sweep /s/demo.yaml --name d --resume --tracking-uri sqlite:////m.db "
        "--address ray://h:10001")
    assert config_source(None) is None
    assert resume_command("s.yaml", "st", "sqlite:////m.db", None, None, verb="study") == \
        "medxfer study s.yaml --name st --resume --tracking-uri sqlite:////m.db"


# --------------------------------------------------------------------------- health checks


def _head_system_config() -> dict:
    import shlex

    cfg = yaml.safe_load((REPO_CLUSTERS / "local.yaml").read_text())
    for tok in shlex.split(cfg["head_start_ray_commands"][-1].replace(";", " ")):
        if tok.startswith("--system-config="):
            return json.loads(tok.split("=", 1)[1])
    raise AssertionError("head_start_ray_commands: no --system-config")


def test_local_runtime_tolerates_a_busy_machine(ray_runtime):
    """The session's runtime (started by cluster_config.init_local_ray, like a sweep's) runs
    with local.yaml's health checks, which are slower to declare a node dead than Ray's own;
    `ray up clusters/local.yaml` starts its head with the same values."""
    from ray._raylet import Config

    want = load_local().ray_init["_system_config"]
    assert set(HEALTH_KEYS) <= set(want)
    running = {k: getattr(Config, k)() for k in HEALTH_KEYS}
    assert running == {k: want[k] for k in HEALTH_KEYS}
    # Ray 2.60's defaults: first check after 5 s, every 3 s, 10 s timeout, dead after 5 misses
    # (a frozen node is dead after ~1 min); ours allow ~6 min.
    assert running["health_check_failure_threshold"] * (
        running["health_check_period_ms"] + running["health_check_timeout_ms"]) >= 5 * 60_000
    assert _head_system_config() == want


# --------------------------------------------------------------------------- frozen raylet


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "platform"), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.mark.timeout(600)
def test_frozen_raylet_stops_the_sweep_which_resumes_once(ray_runtime, tmp_path, tracking_uri):
    sweep_dir = tmp_path / "ray_results" / "stall"
    raw = experiment(
        {"algorithm": "grid", "max_concurrent": 1, "max_failures": 0, "stall_timeout_s": 20,
         "storage_path": str(tmp_path / "ray_results"),
         "space": {"train.lr": {"grid": [0.1, 0.02]}}},
        train={"epochs": 1})
    cfg = tmp_path / "stall.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    # A trial's first epoch takes a minute: nothing can report before the watchdog's verdict,
    # whether or not the first trial got started before the raylet froze.
    cmd = [sys.executable, str(DRIVER), str(cfg), "--name", "stall", "--tracking-uri",
           tracking_uri, "--num-cpus", "2", "--toy", json.dumps({"n": 96, "epoch_seconds": 60})]
    from medxfer.tracking.store import client

    client(tracking_uri).search_experiments()  # one process creates the store (NOTES)
    log = tmp_path / "driver.log"
    with open(log, "w") as out:
        driver = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=out,
                                  stderr=subprocess.STDOUT)
    family = Family(driver)
    try:
        # Freeze the raylet once Ray is up and the sweep is being set up (the snapshot is
        # written right before the Tuner starts).
        deadline = time.monotonic() + 300
        while not (sweep_dir / SNAPSHOT).is_file():
            family.poll()
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.02)
        family.poll()
        raylet = family.named("raylet")
        assert raylet is not None, "no raylet among the driver's processes"
        raylet.send_signal(signal.SIGSTOP)

        deadline = time.monotonic() + 240
        while driver.poll() is None:
            family.poll()
            assert time.monotonic() < deadline, "the stalled sweep did not exit:\n" + \
                log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
        assert driver.returncode == EXIT_STALLED, text[-3000:]
        assert "error: sweep stall stalled: no trial reported a result for" in text
        assert "no alive Ray node with CPUs answered" in text
        assert resume_command(cfg, "stall", tracking_uri, None, 2) in text
        # the driver took down what it started, frozen raylet included
        _, alive = psutil.wait_procs(family.alive(), timeout=30)
        assert not alive, alive
    finally:
        family.kill()

    parents, children = sweep_runs(tracking_uri, "stall")
    assert len(parents) == 1
    assert parents[0].data.tags[schema.STATUS] == schema.STATUS_STALLED
    assert "search.stall_timeout_s: 20" in parents[0].data.tags[schema.STATUS_REASON]
    assert parents[0].info.status == "KILLED"
    assert all(c.info.status == "KILLED" for c in children)  # none left RUNNING

    # --resume (what the printed command runs), here on the session's runtime
    from medxfer.tune.experiment import load_experiment
    from medxfer.tune.sweep import run_sweep

    from toy_trainable import Toy

    res = run_sweep(load_experiment(cfg), name="stall", tracking_uri=tracking_uri, resume=True,
                    trainable=Toy(n=96), verbose=0)
    assert res.n_trials == 2 and res.n_errored == 0
    parents, children = sweep_runs(tracking_uri, "stall")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert schema.STATUS not in parents[0].data.tags
    ids = [c.data.tags[schema.TRIAL_ID] for c in children]
    assert len(ids) == 2 and len(set(ids)) == 2
    for c in children:
        assert c.info.status == "FINISHED"
        assert steps(tracking_uri, c.info.run_id, "val_loss") == [1, 2]  # epoch + selected


def test_study_phases_carry_the_watchdog_with_the_search_timeout():
    """A study's phases are Tune runs too: each gets the watchdog, with the study's
    search.stall_timeout_s (the default without a search, none when it is null)."""
    from medxfer.tune.stall import StallCallback
    from medxfer.tune.study_config import study_from_dict
    from medxfer.tune.study_phases import PhaseRun

    def watchdog(search):
        raw = {"name": "s", "method": "finetune",
               "data": {"root": "data/synth", "flag": "synthpneumonia"},
               "model": {"backbone": "tiny_cnn"}, "protocol": {"label_fractions": [1.0]},
               **({"search": search} if search else {})}
        run = PhaseRun(study_from_dict(raw), None, "s", None, "sqlite:///x.db", "1", "p", 0)
        return [(type(c), c.timeout_s) for c in run.watchdog()]

    space = {"algorithm": "grid", "space": {"train.lr": {"grid": [0.001, 0.2]}}}
    assert watchdog({**space, "stall_timeout_s": 20}) == [(StallCallback, 20.0)]
    assert watchdog(None) == [(StallCallback, 300.0)]
    assert watchdog({**space, "stall_timeout_s": None}) == []
