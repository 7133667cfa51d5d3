"""The queries answer the same through a SQL store and through a real ``mlflow server``.

One sqlite store holds a small benchmark (bulk import: both tables, a tie, FAILED runs, a run
without ``test_auc``) and two sweeps written with ``MlflowClient`` as the sweep code writes them
(a parent run, trials with per-step metrics, a step logged twice, a NaN, a deleted trial, a run
without ``medxfer.kind``). A copy of that file is served by one ``mlflow server`` for the module,
so run ids agree. Each public query is asked of both, with ``MLFLOW_TRACKING_URI`` (and MLflow's
process-wide URI) unset and set to a *different* store holding other numbers under the same
names; the frames must be equal and non-empty, and the working directory must stay free of
store files.
"""

from __future__ import annotations

import io
import math
import os
import shutil

import mlflow.tracking._tracking_service.utils as mlflow_uri_state
import pandas as pd
import pytest
from benchmark_csvs import run_row, write_export
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from medxfer.cli import main
from medxfer.tracking import query, schema
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tracking.server import MlflowServer
from medxfer.tracking.store import ensure_experiment

STRAY = ("mlruns.db", "mlflow.db", "mlruns")
T0 = 1_700_000_000_000  # ms


def _benchmark(d, uri, shift=0.0):
    write_export(d / "fined_blood.csv", [
        run_row("imagenet", "bloodmnist", val_loss=0.5, test_auc=0.91),
        run_row("imagenet", "bloodmnist", val_loss=0.3, test_auc=0.88 - shift),
        run_row("imagenet", "bloodmnist", val_loss=0.3, test_auc=0.85),  # tie: run id decides
        run_row("pathmnist", "bloodmnist", val_loss=0.7, test_auc=0.80 - shift),
        run_row("pathmnist", "bloodmnist", val_loss=0.1, test_auc=None),  # no test_auc: no pick
        run_row("pathmnist", "bloodmnist", val_loss=None, test_auc=None, status="FAILED"),
    ])
    write_export(d / "fined_derma.csv", [
        run_row("imagenet", "dermamnist", val_loss=0.4, test_auc=0.85 - shift),
        run_row("bloodmnist", "dermamnist", val_loss=0.2, test_auc=0.75),
    ])
    write_export(d / "fined_blood_imnet.csv", [
        run_row("convnext", "bloodmnist", val_loss=0.25, test_auc=0.95 - shift, lr="0.1"),
        run_row("convnext", "bloodmnist", val_loss=0.35, test_auc=0.99),
        run_row("vgg", "bloodmnist", val_loss=None, test_auc=None, status="FAILED"),
        run_row("vgg", "bloodmnist", val_loss=0.55, test_auc=0.70),
    ])
    import_benchmark(d, name="mini", tracking_uri=uri)


def _run(c, exp_id, start, tags, steps=None, final=None, params=None):
    """One run: ``steps`` = {key: [(step, value, ts offset)]}, ``final`` = {key: value}."""
    rid = c.create_run(exp_id, start_time=T0 + start, tags=tags).info.run_id
    metrics = [Metric(k, v, T0 + start + ts, s) for k, rows in (steps or {}).items()
               for s, v, ts in rows]
    metrics += [Metric(k, v, T0 + start + 999, 99) for k, v in (final or {}).items()]
    c.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in (params or {}).items()])
    c.set_terminated(rid, "FINISHED", end_time=T0 + start + 1000)
    return rid


def _trial(sweep, source, target, arch="resnet", **more):
    return {schema.KIND: schema.KIND_TRIAL, schema.SWEEP: sweep, schema.SOURCE: source,
            schema.TARGET: target, schema.ARCH: arch, schema.METHOD: "finetune", **more}


def _sweeps(uri, shift=0.0):
    c = MlflowClient(tracking_uri=uri)
    s1 = ensure_experiment(uri, "sweep/s1")
    # The parent carries a pair and the best val_loss: only the kind rule keeps it out.
    _run(c, s1, 0, {schema.KIND: schema.KIND_SWEEP, schema.SWEEP: "s1", schema.SOURCE: "imagenet",
                    schema.TARGET: "bloodmnist", schema.ARCH: "resnet"},
         final={"val_loss": 0.01, "test_auc": 0.5})
    params = {"lr": "0.01", "wd": "0.0", "momentum": "0.9", "batch_size": "32"}
    _run(c, s1, 10, _trial("s1", "imagenet", "bloodmnist"),
         {"val_loss": [(1, 0.9, 1), (2, 0.7, 2), (3, 0.8, 3)],
          "val_auc": [(1, 0.6, 1), (2, 0.7, 2), (3, 0.65, 3)]},
         {"test_auc": 0.81 - shift}, params)
    # Step 2 logged twice: the later write (0.5) wins, in the history and the latest value.
    _run(c, s1, 20, _trial("s1", "pathmnist", "bloodmnist"),
         {"val_loss": [(1, 0.95, 1), (2, 0.85, 2), (2, 0.5, 5)], "val_auc": [(1, 0.55, 1)]},
         {"test_auc": 0.77}, {**params, "lr": "0.1"})
    # Latest val_loss is NaN: no candidate; the NaN step is left out of the history.
    _run(c, s1, 30, _trial("s1", "imagenet", "bloodmnist"),
         {"val_loss": [(1, 0.6, 1), (2, math.nan, 2)]}, {"test_auc": 0.9}, params)
    _run(c, s1, 40, _trial("s1", "imagenet", "dermamnist", **{schema.BENCHMARK: "dataset"}),
         {"val_loss": [(1, 1.2, 1), (2, 1.1, 2)]}, {"test_auc": 0.7 - shift}, params)
    deleted = _run(c, s1, 50, _trial("s1", "imagenet", "dermamnist"),
                   {"val_loss": [(1, 0.001, 1)]}, {"test_auc": 0.99}, params)
    c.delete_run(deleted)
    # Logged by hand, no medxfer.kind: a table run (untagged counts), not a trial.
    _run(c, s1, 60, {schema.SOURCE: "imagenet", schema.TARGET: "dermamnist"},
         final={"val_loss": 0.05, "test_auc": 0.66})
    s2 = ensure_experiment(uri, "sweep/s2")
    _run(c, s2, 70, _trial("s2", "imagenet", "octmnist"),
         {"val_loss": [(1, 0.4, 1), (2, 0.3 + shift, 2)]}, {"test_auc": 0.6}, params)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(sqlite URI, server URI, other store URI); the server serves a copy of the sqlite file."""
    base = tmp_path_factory.mktemp("parity")
    sql = f"sqlite:///{base / 'store.db'}"
    _benchmark(base / "bench", sql)
    _sweeps(sql)
    other = f"sqlite:///{base / 'other' / 'store.db'}"
    _benchmark(base / "other_bench", other, shift=0.05)
    _sweeps(other, shift=0.05)
    shutil.copy(base / "store.db", base / "served.db")
    with MlflowServer(f"sqlite:///{base / 'served.db'}", base / "art",
                      log_path=base / "server.log",
                      extra_args=["--app-name", "medxfer"]) as server:
        yield sql, server.uri, other


@pytest.fixture(params=["table", "search"])
def reader(request, stores, monkeypatch):
    """How the server is read: the ``medxfer`` app's run-table endpoint, or MLflow's own
    ``runs/search`` (what a stock server offers; the same server, its endpoint not asked)."""
    if request.param == "search":
        monkeypatch.setattr(query, "_NO_TABLE_ENDPOINT", {stores[1]})
    return request.param


@pytest.fixture(params=["unset", "other"])
def env(request, stores, tmp_path, monkeypatch):
    """The process-wide tracking URI (variable and MLflow's own) unset or on the other store;
    the test runs in an empty working directory that must stay without store files."""
    other = stores[2] if request.param == "other" else None
    if other:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", other)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(mlflow_uri_state, "_tracking_uri", other)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield other
    assert os.environ.get("MLFLOW_TRACKING_URI") == other, "a reader changed the tracking URI"
    assert [p for p in STRAY if (work / p).exists()] == []


QUERIES = {
    "ground_truth": lambda uri: query.ground_truth(uri, "mini"),
    "ground_truth_architecture": lambda uri: query.ground_truth(uri, "mini",
                                                                benchmark="architecture"),
    "selected_runs": lambda uri: query.selected_runs(uri, "mini"),
    "selected_runs_max": lambda uri: query.selected_runs(uri, "mini", mode="max",
                                                         select_by="test_auc"),
    "grid_runs": lambda uri: query.grid_runs(uri, "mini"),
    "grid_runs_architecture": lambda uri: query.grid_runs(uri, "mini", benchmark="architecture"),
    "sweep_ground_truth": lambda uri: query.selected_runs(uri, "sweep/s*"),
    "sweep_grid_runs": lambda uri: query.grid_runs(uri, "sweep/s1", params=("lr", "wd")),
    "sweep_trials": lambda uri: query.sweep_trials(uri),
    "sweep_trials_named": lambda uri: query.sweep_trials(uri, ["s1"], metrics=("val_loss",)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sql_and_server_agree(stores, env, reader, name):
    sql, http, other = stores
    want = QUERIES[name](sql)
    got = QUERIES[name](http)
    assert (http in query._NO_TABLE_ENDPOINT) == (reader == "search")
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)
    if other:  # the other store really answers otherwise: reading it would have shown
        assert not QUERIES[name](other).equals(want)


def test_table_endpoint_answers_and_refuses(stores):
    """The app's endpoint answers the SQL reader's rows; a bad request is a 400 naming the
    field, not a server error."""
    import requests

    sql, http, _ = stores
    exp_id = query._experiment_id(sql, "benchmark/mini")
    fields = query._Fields(tags=(schema.SOURCE, schema.TARGET), metrics=("val_loss",),
                           required=(schema.TARGET,))
    url = http + "/api/2.0/medxfer/runs/table"
    answer = requests.post(url, json={"experiment_ids": [exp_id], "tags": list(fields.tags),
                                      "metrics": ["val_loss"], "required": [schema.TARGET]},
                           timeout=60).json()
    assert answer["columns"] == fields.columns()
    want = sorted(query._runs_sql(sql, [exp_id], fields))
    assert sorted(tuple(r) for r in answer["rows"]) == want and len(want) == 12
    bad = requests.post(url, json={"experiment_ids": ["1; DROP TABLE runs"]}, timeout=60)
    assert bad.status_code == 400 and "experiment_ids" in bad.json()["message"]


def test_hand_checked_answers(stores):
    """The shared answer is the right one (not merely the same twice)."""
    sql, http, _ = stores
    long = query.selected_runs(http, "mini").set_index(["row", "target"])
    assert long.loc[("imagenet", "bloodmnist"), "n_runs"] == 3
    grid = query.grid_runs(http, "mini")
    tied = grid[grid.row.eq("imagenet") & grid.target.eq("bloodmnist") & grid.val_loss.eq(0.3)]
    assert len(tied) == 2
    assert long.loc[("imagenet", "bloodmnist"), "run_id"] == min(tied.run_id)
    assert long.loc[("imagenet", "bloodmnist"), "select_by"] == pytest.approx(0.3)
    assert long.loc[("pathmnist", "bloodmnist"), "value"] == pytest.approx(0.80)  # not 0.1's
    arch = query.ground_truth(http, "mini", benchmark="architecture")
    assert list(arch.index) == ["convnext", "resnet", "vgg"]
    assert arch.loc["resnet", "bloodmnist"] in (pytest.approx(0.88), pytest.approx(0.85))
    sweep = query.selected_runs(http, "sweep/s1").set_index(["row", "target"])
    assert sweep.loc[("imagenet", "bloodmnist"), "value"] == pytest.approx(0.81)  # not parent
    assert sweep.loc[("pathmnist", "bloodmnist"), "select_by"] == pytest.approx(0.5)
    assert sweep.loc[("imagenet", "dermamnist"), "value"] == pytest.approx(0.66)  # untagged run
    trials = query.sweep_trials(http, ["s1"], metrics=("val_loss",))
    assert trials["value"].notna().all()
    path = trials[trials.source.eq("pathmnist")]
    assert list(zip(path.step, path.value, strict=True)) == [(1, 0.95), (2, 0.5)]
    assert trials.run_id.nunique() == 4  # four live trials; parent, deleted and untagged out


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", ["dataset", "architecture"])
def test_cli_ground_truth_over_http_equals_sqlite(stores, env, benchmark, capsys):
    sql, http, _ = stores
    out = {}
    for uri in (sql, http):
        assert main(["benchmark", "ground-truth", "--tracking-uri", uri, "--name", "mini",
                     "--benchmark", benchmark, "--format", "csv"]) == 0
        out[uri] = capsys.readouterr().out
    assert out[http] == out[sql]
    table = pd.read_csv(io.StringIO(out[http]), index_col="source")
    assert table.notna().to_numpy().sum() >= 3


@pytest.mark.parametrize("argv", [
    ["benchmark", "ground-truth"],
    ["benchmark", "replay", "--searcher", "grid"],
    ["estimate", "evaluate", "--scores", "mini", "--ground-truth", "mini"],
])
@pytest.mark.parametrize("where", ["default", "missing-file"])
def test_read_only_verbs_create_no_store(argv, where, tmp_path, monkeypatch, capsys):
    """On a store that does not exist a read-only verb says so (exit 2) and creates nothing:
    neither the default ``./mlruns.db`` nor the named file."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(mlflow_uri_state, "_tracking_uri", None)
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "elsewhere" / "none.db"
    extra = ["--tracking-uri", f"sqlite:///{missing}"] if where == "missing-file" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert f"no MLflow store at {missing if extra else tmp_path / 'mlruns.db'}" in err, err
    assert [p for p in STRAY if (tmp_path / p).exists()] == []
    assert not missing.parent.exists()
