"""Benchmark import through a real ``mlflow server`` (the HTTP path of ``benchmark_import``).

The reference is the sqlite bulk import of the same files: runs must read back identically
(params, metrics, tags, status, start/end times, names, users). Uses the session-wide
``mlflow_server`` fixture; every test has an experiment of its own.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from benchmark_csvs import comparable as _comparable
from mlflow import MlflowClient
from mlflow.entities import ViewType

from medxfer.tracking import schema
from medxfer.tracking.benchmark_csv import find_files, parse_file
from medxfer.tracking.benchmark_import import import_benchmark, log_run_with_client

_names = itertools.count()


@pytest.fixture
def name():
    return f"http-{next(_names)}"


def _active(uri: str, exp_name: str, view=ViewType.ACTIVE_ONLY):
    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(exp_name)
    return c.search_runs([exp.experiment_id], run_view_type=view, max_results=10_000)


def _by_origin(runs):
    return {r.data.tags[schema.ORIGIN_RUN_ID]: _comparable(r) for r in runs}


@pytest.fixture
def sqlite_reference(export_dir, tmp_path):
    """The same files bulk-imported into a sqlite store, keyed by origin run id."""
    def make(name):
        uri = f"sqlite:///{tmp_path / 'ref.db'}"
        import_benchmark(export_dir, name=name, tracking_uri=uri)
        return _by_origin(_active(uri, f"benchmark/{name}"))
    return make


def test_http_import_matches_sqlite_bulk(mlflow_server, export_dir, name, sqlite_reference,
                                        capsys):
    res = import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri)
    # No "View run ... at" line per run (and no extra GET per run to build it).
    assert "View run" not in capsys.readouterr().out
    assert (res.files, res.runs_in_files, res.written, res.skipped) == (2, 7, 7, 0)
    got = _by_origin(_active(mlflow_server.uri, res.experiment_name))
    ref = sqlite_reference(name)
    assert len(got) == 7
    assert got == ref
    statuses = sorted(r["status"] for r in got.values())
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED", "FINISHED", "FINISHED",
                        "KILLED"]


def test_http_experiment_artifacts_live_on_the_server(mlflow_server, export_dir, name):
    """Runs written through a server get artifact locations the server chose, not paths on
    the importing machine (which workers and the UI could not reach)."""
    res = import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri)
    exp = MlflowClient(tracking_uri=mlflow_server.uri).get_experiment(res.experiment_id)
    root = Path(mlflow_server.artifact_root).as_uri()
    assert exp.artifact_location.startswith((root, mlflow_server.artifact_root,
                                             "mlflow-artifacts:")), exp.artifact_location


def test_http_import_is_idempotent(mlflow_server, export_dir, name):
    first = import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri)
    before = {r.info.run_id for r in _active(mlflow_server.uri, first.experiment_name)}
    second = import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri)
    assert (first.written, second.written, second.skipped) == (7, 0, 7)
    runs = _active(mlflow_server.uri, first.experiment_name, ViewType.ALL)
    assert {r.info.run_id for r in runs} == before  # nothing written, nothing deleted


def test_http_interrupted_runs_are_replaced(mlflow_server, export_dir, name, sqlite_reference):
    """A run left RUNNING by an interrupted import (and a duplicate) are deleted and the origin
    run written again: each origin run ends up exactly once among the active runs."""
    uri = mlflow_server.uri
    exp_name = f"benchmark/{name}"
    res = import_benchmark(export_dir, name=name, tracking_uri=uri)
    c = MlflowClient(tracking_uri=uri)
    files = {p.name: parse_file(p) for p in find_files(export_dir)}
    blood = files["fined_blood.csv"].runs
    imnet = files["fined_blood_imnet.csv"].runs
    runs = {r.data.tags[schema.ORIGIN_RUN_ID]: r for r in _active(uri, exp_name)}

    # 1) Interrupted mid-run: the completed copy is absent, a RUNNING one with the origin tags
    #    and only part of its data is there (what a kill between create_run and set_terminated
    #    leaves).
    victim = blood[0]
    c.delete_run(runs[victim.origin_run_id].info.run_id)
    partial = c.create_run(res.experiment_id, start_time=victim.start_time, tags=victim.tags,
                           run_name=victim.name)
    c.log_param(partial.info.run_id, "lr", "999")
    # 2) RUNNING copy beside a complete one (kill during a re-import's write of that run).
    stale = c.create_run(res.experiment_id, tags=imnet[0].tags)
    # 3) A duplicate complete copy of another run.
    dup = log_run_with_client(c, res.experiment_id, imnet[3])
    # 4) A RUNNING run of another file's origin id stays untouched (different origin_file).
    other_tags = dict(blood[1].tags, **{schema.ORIGIN_FILE: "fined_other.csv"})
    other = c.create_run(res.experiment_id, tags=other_tags)

    again = import_benchmark(export_dir, name=name, tracking_uri=uri)
    assert (again.written, again.skipped) == (1, 6)

    deleted = {r.info.run_id for r in _active(uri, exp_name, ViewType.DELETED_ONLY)}
    assert {partial.info.run_id, stale.info.run_id} <= deleted
    # Of the two complete copies of imnet[3] exactly one survives (whichever search saw first).
    active = [r for r in _active(uri, exp_name) if r.info.run_id != other.info.run_id]
    assert len(active) == 7
    origins = [r.data.tags[schema.ORIGIN_RUN_ID] for r in active]
    assert sorted(origins) == sorted(r.origin_run_id for f in files.values() for r in f.runs)
    assert all(r.info.status != "RUNNING" for r in active)
    assert dup in deleted or runs[imnet[3].origin_run_id].info.run_id in deleted
    assert _by_origin(active) == sqlite_reference(name)  # the replacement is complete
    assert c.get_run(other.info.run_id).info.lifecycle_stage == "active"


def test_http_import_reports_progress_per_run(mlflow_server, export_dir, name):
    """Through a server a file takes minutes: progress comes per run, not per file; a re-run
    counts the runs already there at once."""
    calls = []
    res = import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri,
                           progress=lambda f, done, total: calls.append((f, done, total)))
    assert res.written == 7
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and set(done) == set(range(1, 8))  # every run, in order
    assert {t for _, _, t in calls} == {7}
    assert {d: f for f, d, _ in calls}[3] == "fined_blood.csv"
    assert {d: f for f, d, _ in calls}[4] == "fined_blood_imnet.csv"
    calls.clear()
    import_benchmark(export_dir, name=name, tracking_uri=mlflow_server.uri,
                     progress=lambda f, done, total: calls.append((f, done, total)))
    assert [d for _, d, _ in calls] == [3, 7]

