"""The end-to-end demo, reduced: 2 sources x 1 target, real Ray sweeps, real MLflow store."""

from __future__ import annotations

import math
import statistics

import pytest
from mlflow import MlflowClient

from medxfer.demo import DemoPlan, run_demo
from medxfer.tracking import schema
from medxfer.tracking.query import ground_truth
from medxfer.transferability import list_metrics


def test_demo_pipeline_end_to_end(tmp_path, tracking_uri, ray_runtime):
    plan = DemoPlan(out=tmp_path / "demo", name="demo-test", sources=("synthderm", "synthpath"),
                    targets=("synthorgan",), n_per_class=24, train_per_class=20,
                    val_per_class=10, pretrain_epochs=2, epochs=1, trials=2)
    lines = []
    res = run_demo(plan, tracking_uri, lines.append)

    client = MlflowClient(tracking_uri=tracking_uri)
    # The ground truth is logged by the sweeps: one sweep per (source, target), 2 trials each.
    for src in plan.sources:
        exp = client.get_experiment_by_name(f"sweep/demo-test-synthorgan-{src}")
        runs = client.search_runs([exp.experiment_id])
        trials = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_TRIAL]
        assert len(trials) == 2
        assert {r.data.tags[schema.SOURCE] for r in trials} == {src}
        assert {r.data.tags[schema.BENCHMARK] for r in trials} == {"dataset"}
        assert all("lr" in r.data.params and "test_auc" in r.data.metrics for r in trials)
    gt = ground_truth(tracking_uri, "sweep/demo-test-*-*")
    assert sorted(gt.index) == ["synthderm", "synthpath"] and list(gt.columns) == ["synthorgan"]
    assert res.ground_truth.loc["synthderm", "synthorgan"] == gt.loc["synthderm", "synthorgan"]

    # Every metric scored every source, recorded in transferability/<name>.
    exp = client.get_experiment_by_name("transferability/demo-test")
    est = client.search_runs([exp.experiment_id], max_results=1000)
    assert {r.data.tags[schema.METRIC] for r in est} == set(list_metrics())
    assert {r.data.tags[schema.SOURCE] for r in est} == set(plan.sources)

    # Tau table: one row per target, a defined tau for the ranked feature metrics.
    assert list(res.taus.index) == ["synthorgan"]
    for m in ("logme", "leep", "parc", "lp_fu"):
        assert m in res.taus.columns
        tau = res.taus.loc["synthorgan", m]
        assert math.isnan(tau) or abs(tau) == pytest.approx(1.0)
    assert res.report.is_file() and "ground-truth" in res.report.read_text()
    assert any(line.startswith("[7/7]") for line in lines)

    # The small study: 2 rows x 2 folds, each cell also scored zero-shot on hospital h1; its
    # table in the report equals the cells' mean ± std.
    exp = client.get_experiment_by_name("study/demo-test-study")
    cells = [r for r in client.search_runs([exp.experiment_id])
             if r.data.tags.get(schema.KIND) == schema.KIND_CELL]
    assert sorted((r.data.tags[schema.CELL_ROW], r.data.tags[schema.CELL_FOLD])
                  for r in cells) == [("full-ft", "0"), ("full-ft", "1"), ("linear", "0"),
                                      ("linear", "1")]
    assert all(r.info.status == "FINISHED" and "h1_test_auc" in r.data.metrics for r in cells)
    assert list(res.study.columns) == ["ID", "h1 0%"]
    page = res.report.read_text()
    for row in ("full-ft", "linear"):
        for col, key in (("ID", "test_auc"), ("h1 0%", "h1_test_auc")):
            v = [r.data.metrics[key] for r in cells if r.data.tags[schema.CELL_ROW] == row]
            text = f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"
            assert res.study.loc[row, col] == text
            assert f'data-row="{row}" data-col="{col}">{text}</td>' in page
