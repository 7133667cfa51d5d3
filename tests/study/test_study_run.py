"""Studies on a real Ray runtime and MLflow store.

* The shipped example (3 folds x 2 OOD test sets x 2 few-shot fractions), its driver SIGKILLed
  after the first training cell and then ``--resume``d: every cell is one run with the right
  tags, the rows each trial used (recomputed here, checked against the trial's
  ``selection_crc`` param) never put a fold's test image into its training or validation part
  nor split a patient, few-shot fractions are nested, and the parent's mean +- std per cell are
  the children's values. Both drivers are ``medxfer study`` processes with their own local
  runtime; the Ray helpers the killed one leaves behind are stopped by PID.
* A study with a ``search:`` section (in this session's runtime): each cell records the
  configuration its search chose, and no search trial logs a test metric.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from process_helpers import kill_tree
import yaml

from medxfer.config import CellConfig, DataConfig, ProtocolConfig
from medxfer.tracking import schema

from study_helpers import EXAMPLE, REPO

DRIVER = "import sys; from medxfer.cli import main; sys.exit(main(sys.argv[1:]))"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "platform"),
                                         *filter(None, [env.get("PYTHONPATH")])])
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"   # save the experiment state often (small study)
    return env


def _runs(uri: str, name: str):
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(schema.experiment_name("study", name))
    if exp is None:
        return c, []
    return c, c.search_runs([exp.experiment_id], max_results=1000)


def _terminated(phase_dir: Path) -> set[str]:
    """Cell keys that Tune's saved state of a phase holds as TERMINATED."""
    from medxfer.tune.study_config import cell_key

    done = set()
    for f in phase_dir.glob("experiment_state-*.json"):
        try:
            trials = json.loads(f.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):
            continue
        for trial_json, _ in trials:
            t = json.loads(trial_json)
            if t.get("status") == "TERMINATED":
                cfg = t.get("config") or {}
                if isinstance(cfg, dict) and "cell" in cfg:
                    done.add(cell_key(cfg["cell"]))
    return done


def _finished_cells(uri: str, name: str) -> set[str]:
    try:
        _, runs = _runs(uri, name)
    except Exception:  # store not created yet
        return set()
    return {r.data.tags[schema.CELL_KEY] for r in runs
            if r.data.tags.get(schema.KIND) == schema.KIND_CELL and r.info.status == "FINISHED"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_study_killed_and_resumed_records_every_cell_once(study_data, tmp_path):
    raw = yaml.safe_load(EXAMPLE.read_text())
    # two cells at a time, as shipped: the kill may cut a running cell, which the resume must
    # finish in its one MLflow run
    raw["protocol"]["storage_path"] = str(tmp_path / "ray_results")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    cmd = [sys.executable, "-c", DRIVER, "study", str(path), "--tracking-uri", uri,
           "--num-cpus", "2"]
    from medxfer.tracking.store import client

    client(uri).search_experiments()  # create the store before two processes open it
    train_dir = tmp_path / "ray_results" / "study-example" / "train"
    log1 = open(tmp_path / "driver1.log", "w")
    t0 = time.monotonic()
    driver = subprocess.Popen(cmd, cwd=study_data, env=_env(), stdout=log1,
                              stderr=subprocess.STDOUT)
    try:
        while True:
            done = _finished_cells(uri, "study-example")
            if done and done <= _terminated(train_dir):
                break
            assert driver.poll() is None, (tmp_path / "driver1.log").read_text()[-3000:]
            assert time.monotonic() - t0 < 400, "no training cell finished in time"
            time.sleep(0.2)
    finally:
        kill_tree(driver)
        log1.close()
    before = _finished_cells(uri, "study-example")
    assert 1 <= len(before) < 15
    resumed_at = time.time() * 1000
    t1 = time.monotonic()
    out = subprocess.run(cmd + ["--resume"], cwd=study_data, env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"first driver {t1 - t0:.0f} s until killed, resume {time.monotonic() - t1:.0f} s")
    print(out.stdout[-2500:])
    assert "study study-example: 15 cells" in out.stdout

    c, runs = _runs(uri, "study-example")
    parents = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_STUDY]
    cells = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_CELL]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    keys = [r.data.tags[schema.CELL_KEY] for r in cells]
    assert len(keys) == 15 and len(set(keys)) == 15
    for r in cells:
        assert r.info.status == "FINISHED"
        assert r.data.tags[schema.PARENT_RUN_ID] == parents[0].info.run_id
        steps = [m.step for m in c.get_metric_history(r.info.run_id, "val_loss")]
        epochs = 3 if r.data.tags[schema.CELL_PHASE] == "train" else 2
        assert set(steps) == set(range(1, epochs + 2))
        if r.data.tags[schema.CELL_KEY] in before:  # finished before the kill: not run again
            assert len(steps) == epochs + 1
            assert max(m.timestamp for m in c.get_metric_history(r.info.run_id, "val_loss")) \
                < resumed_at
    _check_tags_and_rows(cells, study_data)
    _check_parent_against_children(c, parents[0], cells)


def _check_tags_and_rows(cells, study_data: Path) -> None:
    from medxfer.data.protocol import select_cell, select_transfer
    from medxfer.data.sources import load_source

    raw = yaml.safe_load(EXAMPLE.read_text())
    root = study_data / "data" / "synth"
    p = ProtocolConfig.model_validate({**raw["protocol"], "test_sets": {
        n: {**t, "root": str(root)} for n, t in raw["protocol"]["test_sets"].items()}})
    d = DataConfig(root=str(root), flag="synthpneumonia")
    src = load_source(d)
    others = {n: load_source(t.resolve(d)) for n, t in p.test_sets.items()}
    few: dict[tuple, np.ndarray] = {}
    for r in cells:
        t, params = r.data.tags, r.data.params
        assert t[schema.CELL_SEED] == "0" and t[schema.CELL_ROW] == "finetune"
        fold = int(t[schema.CELL_FOLD])
        assert fold in (0, 1, 2)
        if t[schema.CELL_PHASE] == "train":
            assert t[schema.CELL_TEST_SET] == "synthpneumonia"
            assert schema.CELL_FRACTION not in t
            sel = select_cell(src, d, p, CellConfig(fold=fold), others)
            seen = np.r_[sel.train, sel.val]
            assert not set(sel.test) & set(seen)
            assert not set(src.patients[sel.test]) & set(src.patients[seen])
            assert {"test_auc", "h1_test_auc", "h2_test_auc"} <= set(r.data.metrics)
        else:
            name, fraction = t[schema.CELL_TEST_SET], float(t[schema.CELL_FRACTION])
            assert name in ("h1", "h2") and fraction in (0.1, 0.25)
            sel = select_transfer(others[name], p, CellConfig(
                phase="transfer", fold=fold, test_set=name, fraction=fraction))
            assert not set(sel.test) & set(np.r_[sel.train, sel.val])
            few[(name, fold, fraction)] = sel.train
            assert t[schema.TARGET] == f"synthpneumonia_{name}"
        # the trial used exactly these rows
        assert int(params["selection_crc"]) == sel.crc()
        assert int(params["n_train"]) == len(sel.train)
    for (name, fold, fraction), rows in few.items():
        if fraction == 0.1:
            assert set(rows) < set(few[(name, fold, 0.25)])


def _check_parent_against_children(c, parent, cells) -> None:
    from medxfer.reports.study import metric_name

    m = parent.data.metrics

    def values(phase, metric, **tags):
        out = []
        for r in cells:
            t = r.data.tags
            if t[schema.CELL_PHASE] == phase and all(t.get(k) == v for k, v in tags.items()):
                out.append(r.data.metrics[metric])
        return out

    expected = {"id": values("train", "test_auc")}
    for name in ("h1", "h2"):
        expected[f"{name}_0"] = values("train", f"{name}_test_auc")
        for f in ("0.1", "0.25"):
            expected[f"{name}_{f}"] = values("transfer", "test_auc", **{
                schema.CELL_TEST_SET: name, schema.CELL_FRACTION: f})
    for key, vals in expected.items():
        assert len(vals) == 3
        mean = sum(vals) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 2)
        assert m[metric_name("finetune", key, "mean")] == pytest.approx(mean)
        assert m[metric_name("finetune", key, "std")] == pytest.approx(std)
        assert m[metric_name("finetune", key, "n")] == 3
    files = {f.path for f in c.list_artifacts(parent.info.run_id)}
    assert {f"study_table.{x}" for x in ("csv", "md", "tex", "txt")} <= files
    table = c.download_artifacts(parent.info.run_id, "study_table.csv")
    header = Path(table).read_text().splitlines()[0]
    assert header == "method,ID,h1 0%,h1 10%,h1 25%,h2 0%,h2 10%,h2 25%"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_search_records_chosen_configuration_and_never_a_test_metric(
        study_data, tmp_path, tracking_uri, ray_runtime, monkeypatch):
    from medxfer.cli.study import run_and_report

    monkeypatch.chdir(study_data)
    raw = {"name": "searched", "method": "finetune",
           "data": {"root": "data/synth", "flag": "synthpneumonia"},
           "model": {"backbone": "tiny_cnn"},
           "train": {"epochs": 2, "batch_size": 16, "lr": 0.05},
           "protocol": {"label_fractions": [0.5, 1.0], "storage_path": str(tmp_path / "rr"),
                        "max_concurrent": 2},
           "search": {"algorithm": "grid", "metric": "val_loss", "mode": "min",
                      "max_concurrent": 2, "space": {"train.lr": {"grid": [0.001, 0.2]}}}}
    path = tmp_path / "searched.yaml"
    path.write_text(yaml.safe_dump(raw))
    result, summary = run_and_report(path, tracking_uri=tracking_uri, verbose=0,
                                     echo=lambda s: None)
    print(f"search study: {result.n_trials} trials in {result.seconds:.0f} s, phases "
          f"{result.phases}, most at once {result.concurrency}")
    assert list(summary.table.columns) == ["ID 100%", "ID 50%"]
    c, runs = _runs(tracking_uri, "searched")
    search = [r for r in runs if r.data.tags.get(schema.CELL_PHASE) == "search"]
    cells = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_CELL]
    assert len(search) == 4 and len(cells) == 2
    for r in search:
        assert r.data.tags[schema.KIND] == schema.KIND_TRIAL
        # named by what it searches (cell, sampled lr), not by Ray's trial id
        assert r.info.run_name.startswith("search ") and \
            r.info.run_name.endswith(f" lr={float(r.data.params['lr']):.3g}")
        assert r.data.tags[schema.TRIAL_ID] not in r.info.run_name
        assert not [k for k in r.data.metrics if k.startswith("test") or "_test" in k]
        assert "val_loss" in r.data.metrics
    for cell in cells:
        fraction = cell.data.tags[schema.CELL_FRACTION]
        mine = [r for r in search if r.data.tags[schema.CELL_FRACTION] == fraction]
        best = min(mine, key=lambda r: r.data.metrics["val_loss"])
        assert cell.data.tags[schema.CELL_SEARCH_RUN] == best.info.run_id
        assert float(cell.data.params["search.chosen.train.lr"]) == \
            float(best.data.params["lr"]) == float(cell.data.params["lr"])
        assert cell.data.params["n_train"] == best.data.params["n_train"]
        assert "test_auc" in cell.data.metrics
    assert set(result.chosen) == {r.data.tags[schema.CELL_KEY] for r in cells}
    parent = next(r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_STUDY)
    saved = json.loads(Path(c.download_artifacts(parent.info.run_id, "study_search.json"))
                       .read_text())
    assert {k: v["config"] for k, v in saved.items()} == \
        {k: v["config"] for k, v in result.chosen.items()}
