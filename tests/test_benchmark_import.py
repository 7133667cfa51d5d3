"""Benchmark import: round trip through MLflow's API, idempotence, interruption, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import mlflow
import pandas as pd
import pytest
from benchmark_csvs import comparable as _comparable
from benchmark_csvs import HEADER, run_row, write_export
from mlflow import MlflowClient

from medxfer.cli import main
from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tracking.benchmark_csv import find_files, parse_file
from medxfer.tracking.benchmark_import import import_benchmark, log_run_with_client
from medxfer.tracking.store import ensure_experiment


def _runs(uri, exp_name):
    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(exp_name)
    return mlflow.search_runs([exp.experiment_id], output_format="list", max_results=100_000,
                              ) if exp else []


def test_round_trip_matches_public_client(export_dir, tmp_path, monkeypatch):
    """Bulk-inserted runs read back through MLflow exactly as client-logged runs do."""
    bulk_uri = f"sqlite:///{tmp_path / 'bulk.db'}"
    ref_uri = f"sqlite:///{tmp_path / 'ref.db'}"
    res = import_benchmark(export_dir, name="b", tracking_uri=bulk_uri)
    assert (res.written, res.skipped, res.runs_in_files) == (7, 0, 7)

    ref_client = MlflowClient(tracking_uri=ref_uri)
    ref_exp = ensure_experiment(ref_uri, "benchmark/b")
    for f in find_files(export_dir):
        for r in parse_file(f).runs:
            log_run_with_client(ref_client, ref_exp, r)

    mlflow.set_tracking_uri(bulk_uri)
    bulk = {r.data.tags[schema.ORIGIN_RUN_ID]: _comparable(r)
            for r in _runs(bulk_uri, "benchmark/b")}
    mlflow.set_tracking_uri(ref_uri)
    ref = {r.data.tags[schema.ORIGIN_RUN_ID]: _comparable(r) for r in _runs(ref_uri, "benchmark/b")}
    assert len(bulk) == 7
    assert bulk == ref
    # The pandas view (what most users call) agrees too, column by column.
    mlflow.set_tracking_uri(bulk_uri)
    df_b = mlflow.search_runs(experiment_names=["benchmark/b"])
    mlflow.set_tracking_uri(ref_uri)
    df_r = mlflow.search_runs(experiment_names=["benchmark/b"])
    assert sorted(df_b.columns) == sorted(df_r.columns)
    key = f"tags.{schema.ORIGIN_RUN_ID}"
    drop = ["run_id", "artifact_uri", "experiment_id"]
    a = df_b.drop(columns=drop).sort_values(key).reset_index(drop=True)
    b = df_r.drop(columns=drop).sort_values(key).reset_index(drop=True)[a.columns]
    pd.testing.assert_frame_equal(a, b)


def test_values_tags_and_status(export_dir, tracking_uri):
    import_benchmark(export_dir, name="b", tracking_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    runs = {r.data.params["source_flag"] + "/" + r.info.status: r
            for r in _runs(tracking_uri, "benchmark/b")}
    r = runs["imagenet/FINISHED"] if "imagenet/FINISHED" in runs else None
    assert r is not None
    # 2024-08-28 10:10:06 Europe/Berlin (CEST, UTC+2) = 08:10:06 UTC; + 29.1 min.
    start = int(datetime(2024, 8, 28, 8, 10, 6, tzinfo=timezone.utc).timestamp() * 1000)
    assert r.info.start_time == start
    assert r.info.end_time == start + round(29.1 * 60_000)
    assert r.data.params["params"] == "'\"-\"'"
    assert r.data.params["workload_listener"] == "''"
    assert "SMI - GPU Util" not in r.data.metrics  # empty cell: absent, never 0 or NaN
    assert r.data.metrics["TOP - CPU Utilization"] == pytest.approx(5.2)
    assert r.data.tags[schema.KIND] == "import"
    assert r.data.tags[schema.ARCH] == "resnet"
    assert r.data.tags[schema.BENCHMARK] == "dataset"
    assert r.data.tags[schema.METHOD] == "finetune"
    assert r.data.tags[schema.TARGET] == "bloodmnist"

    killed = runs["vgg/KILLED"]
    assert killed.data.tags[schema.ORIGIN_STATUS] == "RUNNING"
    assert killed.data.tags[schema.SOURCE] == "imagenet"
    assert killed.data.tags[schema.ARCH] == "vgg"
    assert killed.data.tags[schema.BENCHMARK] == "architecture"
    assert killed.data.metrics == {}
    assert killed.info.end_time is None
    failed = runs["vgg/FAILED"]
    assert failed.data.tags[schema.ORIGIN_STATUS] == "FAILED"
    assert failed.info.end_time - failed.info.start_time == 180_000
    conv = runs["convnext/FINISHED"]
    assert conv.info.end_time - conv.info.start_time == 11_700


def test_idempotent(export_dir, tracking_uri):
    first = import_benchmark(export_dir, tracking_uri=tracking_uri)
    second = import_benchmark(export_dir, tracking_uri=tracking_uri)
    assert (first.written, second.written, second.skipped) == (7, 0, 7)
    mlflow.set_tracking_uri(tracking_uri)
    assert len(_runs(tracking_uri, first.experiment_name)) == 7


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from medxfer.tracking.benchmark_import import import_benchmark
    kill_after = int(sys.argv[3])
    def progress(name, done, total, _n=[0]):
        _n[0] += 1
        if _n[0] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    import_benchmark(sys.argv[1], tracking_uri=sys.argv[2], progress=progress)
""")


@pytest.mark.parametrize("kill_after", [1, 2])
def test_interrupted_import_completes_on_rerun(export_dir, tracking_uri, kill_after):
    """kill -9 after the first file's inserts, or after all inserts before the commit."""
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(export_dir), tracking_uri,
                           str(kill_after)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    res = import_benchmark(export_dir, tracking_uri=tracking_uri)
    assert res.written == 7 and res.skipped == 0  # nothing partial survived the kill
    mlflow.set_tracking_uri(tracking_uri)
    runs = _runs(tracking_uri, res.experiment_name)
    assert len(runs) == 7
    assert len({r.data.tags[schema.ORIGIN_RUN_ID] for r in runs}) == 7
    for r in runs:  # complete: every run has all its params and tags
        assert len(r.data.params) == 17
        assert schema.TARGET in r.data.tags


# ----------------------------------------------------------------------------- bad input
def _bad(tmp_path, rows, header=None, name="fined_bad.csv"):
    d = tmp_path / "badbench"
    write_export(d / "fined_ok.csv",
                 [run_row("imagenet", "bloodmnist", val_loss=0.1, test_auc=0.9)])
    write_export(d / name, rows, header)
    return d


@pytest.mark.parametrize("missing", ["Run ID", "Status", "source_flag", "target_flag",
                                     "val_loss", "test_auc"])
def test_missing_required_column(tmp_path, tracking_uri, missing, capsys):
    header = [h for h in HEADER if h != missing]
    d = _bad(tmp_path, [run_row("a", "b", val_loss=0.1, test_auc=0.9)], header)
    code = main(["benchmark", "import", str(d), "--tracking-uri", tracking_uri])
    err = capsys.readouterr().err
    assert code == 2
    assert "fined_bad.csv" in err and "line 1" in err and missing in err
    assert _nothing_recorded(tracking_uri)


@pytest.mark.parametrize("field,value,expect", [
    ("val_loss", "0.3x", "malformed number '0.3x'"),
    ("test_auc", "nan", "non-finite"),
    ("Status", "DONE", "unknown status 'DONE'"),
    ("Duration", "29 minutes", "duration"),
    ("Start Time", "28/08/2024", "expected a time"),
])
def test_bad_cell(tmp_path, tracking_uri, field, value, expect, capsys):
    rows = [run_row("a", "b", val_loss=0.1, test_auc=0.9), run_row("a", "b", val_loss=0.2,
                                                                   test_auc=0.8)]
    rows[1][field] = value
    d = _bad(tmp_path, rows)
    assert main(["benchmark", "import", str(d), "--tracking-uri", tracking_uri]) == 2
    err = capsys.readouterr().err
    assert "fined_bad.csv" in err and "line 3" in err and f"'{field}'" in err and expect in err
    assert _nothing_recorded(tracking_uri)


def test_no_exports_in_directory(tmp_path, tracking_uri, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["benchmark", "import", str(tmp_path / "empty"), "--tracking-uri",
                 tracking_uri]) == 2
    assert "no fined_*.csv files" in capsys.readouterr().err
    with pytest.raises(MedxferInputError, match="not found"):
        find_files(tmp_path / "nope")


def test_ragged_row_names_line(tmp_path):
    d = tmp_path / "r"
    p = write_export(d / "fined_x.csv", [run_row("a", "b", val_loss=0.1, test_auc=0.9)])
    with open(p, "a") as fh:
        fh.write("1,2,3\n")
    with pytest.raises(MedxferInputError, match=r"fined_x.csv, line 3: expected \d+ cells"):
        parse_file(p)


def _nothing_recorded(uri):
    if not os.path.exists(uri[len("sqlite:///"):]):
        return True
    mlflow.set_tracking_uri(uri)
    return all(len(_runs(uri, e.name)) == 0
               for e in MlflowClient(tracking_uri=uri).search_experiments())
