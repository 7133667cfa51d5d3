"""The cheapest shipped smoke study end to end, as a user runs it on a fresh clone: from an
empty folder, ``search_spaces/study_thesis_smoke.yaml`` writes its declared synthetic data,
runs its cells on Ray (this session's runtime), and records them and its table in MLflow."""

from __future__ import annotations

import json
import statistics

import pytest

from medxfer.reports.study import metric_name
from medxfer.tracking import schema

from study_helpers import REPO

SMOKE = REPO / "search_spaces" / "study_thesis_smoke.yaml"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_thesis_smoke_study_runs_from_an_empty_folder(tmp_path, tracking_uri, ray_runtime,
                                                      monkeypatch):
    from mlflow import MlflowClient

    from medxfer.cli.study import run_and_report
    from medxfer.data.synth_studies import SYNTH_MARKER

    monkeypatch.chdir(tmp_path)
    result, summary = run_and_report(SMOKE, tracking_uri=tracking_uri, verbose=0,
                                     echo=lambda s: None)
    print(f"thesis smoke: {result.n_trials} trials in {result.seconds:.0f} s, most at once "
          f"{result.concurrency}")
    declared = json.loads((tmp_path / "data" / "smoke" / "thesis" / SYNTH_MARKER).read_text())
    assert declared["n_per_class"] == 100 and declared["modalities"] == ["synthpneumonia"]
    assert result.n_errored == 0 and len(result.records) == 4
    assert {(r["row"], r["seed"]) for r in result.records} == \
        {(row, seed) for row in ("full-ft", "linear") for seed in (0, 1)}
    for r in result.records:
        assert r["status"] == "FINISHED" and r["phase"] == "train" and r["fold"] is None
        assert r["params"]["n_train"] == "200"  # 100 per class of 2: the thesis subsample
        assert 0 <= r["metrics"]["test_auc"] <= 1
    assert list(summary.table.index) == ["full-ft", "linear"]
    assert list(summary.table.columns) == ["ID"]
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags[schema.KIND] == schema.KIND_STUDY
    assert parent.info.status == "FINISHED"
    for row in ("full-ft", "linear"):
        values = [r["metrics"]["test_auc"] for r in result.records if r["row"] == row]
        assert parent.data.metrics[metric_name(row, "id", "mean")] == \
            pytest.approx(statistics.mean(values))
        assert parent.data.metrics[metric_name(row, "id", "std")] == \
            pytest.approx(statistics.stdev(values))
        mean, std = statistics.mean(values), statistics.stdev(values)
        assert summary.table.loc[row, "ID"] == f"{mean:.2f} ± {std:.2f}"


SEED003 = REPO / "search_spaces" / "study_seed003_labelled_smoke.yaml"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_seed003_smoke_study_segments_with_dice(tmp_path, tracking_uri, ray_runtime,
                                               monkeypatch):
    """Seed 003 Table I's shape: cltci -> U-Net and random -> U-Net on M = 10 lung masks of
    each of 2 patient-grouped folds; the table and the report's Studies section hold the
    cells' test Dice."""
    from mlflow import MlflowClient

    from medxfer.cli.study import run_and_report
    from medxfer.reports.studies import studies_body

    monkeypatch.chdir(tmp_path)
    result, summary = run_and_report(SEED003, tracking_uri=tracking_uri, verbose=0,
                                     echo=lambda s: None)
    print(f"seed003 smoke: {result.n_trials} trials in {result.seconds:.0f} s")
    assert result.n_errored == 0 and len(result.records) == 4
    assert summary.metric == "mean_dice"
    for r in result.records:
        assert r["status"] == "FINISHED" and r["n_labelled"] == 10
        assert r["params"]["n_train"] == "10" and r["params"]["n_labelled"] == "10"
        assert 0 <= r["metrics"]["test_mean_dice"] <= 1
        assert "test_auc" not in r["metrics"]
    pretrained = [r for r in result.records if r["row"] == "cltci-moco"]
    assert {r["params"]["pretrain.method"] for r in pretrained} == {"cltci"}
    assert all(r["metrics"]["stage"] == 1 for r in pretrained)  # segment after cltci
    assert len({r["params"]["selection_crc"] for r in pretrained}) == 2  # two folds' rows
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["protocol.metric"] == "mean_dice"
    tables = []
    body, why = studies_body(tracking_uri, None, tmp_path, tables, {})
    assert why is None and "<p>test mean_dice, parent run" in body
    for row in ("cltci-moco", "random"):
        values = [r["metrics"]["test_mean_dice"] for r in result.records if r["row"] == row]
        assert parent.data.metrics[metric_name(row, "id_n10", "mean")] == \
            pytest.approx(statistics.mean(values))
        cell = f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
        assert summary.table.loc[row, "ID M=10"] == cell
        assert f'data-row="{row}" data-col="ID M=10">{cell}</td>' in body
