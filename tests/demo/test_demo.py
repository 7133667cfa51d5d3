"""The end-to-end demo, reduced: 2 sources x 1 target, real Ray sweeps, real MLflow store."""

from __future__ import annotations

import math

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
    assert any(line.startswith("[6/6]") for line in lines)
