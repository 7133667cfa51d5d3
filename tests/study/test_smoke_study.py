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
