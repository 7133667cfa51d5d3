"""A small MLflow store for the report tests: benchmark, estimates and one sweep.

Built once per module from benchmark CSVs (``import_benchmark``) and runs logged with
``MlflowClient`` in the run schema's tags, so the report reads what real writers write.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_csvs import run_row, write_export

SOURCES = ["bloodmnist", "dermamnist", "imagenet", "pathmnist"]
TARGETS = ["bloodmnist", "dermamnist", "octmnist", "pathmnist"]
METRICS = ["logme", "leep", "parc"]
# (source, target, val_loss per step), in start order; the trials of sweep/s1.
TRIALS = [
    ("imagenet", "bloodmnist", [0.9, 0.7, 0.8]),
    ("pathmnist", "bloodmnist", [0.95, 0.85]),
    ("imagenet", "bloodmnist", [0.6, 0.65]),
    ("pathmnist", "bloodmnist", [0.5]),
    ("imagenet", "bloodmnist", [0.75, 0.72]),
    ("imagenet", "dermamnist", [1.2, 1.1]),
    ("imagenet", "dermamnist", [1.3]),
    ("imagenet", "dermamnist", [1.0, 0.9, 1.05]),
]
# Hand-computed running minimum of each trial's best val_loss, per (target, line):
# (trial numbers among the target's trials, best so far).
EXPECTED_CURVES = {
    ("bloodmnist", "imagenet"): ([1, 3, 5], [0.7, 0.6, 0.6]),
    ("bloodmnist", "pathmnist"): ([2, 4], [0.85, 0.5]),
    ("bloodmnist", "all sources"): ([1, 2, 3, 4, 5], [0.7, 0.7, 0.6, 0.5, 0.5]),
    ("dermamnist", "imagenet"): ([1, 2, 3], [1.1, 1.1, 0.9]),
}


def _benchmark(tmp, uri):
    from medxfer.tracking.benchmark_import import import_benchmark

    rng = np.random.default_rng(0)
    for t in TARGETS:
        rows = []
        for s in SOURCES:
            for _ in range(2):  # two runs per pair: the lower val_loss is the ground truth
                rows.append(run_row(s, t, val_loss=round(float(rng.uniform(0.2, 1.0)), 4),
                                    test_auc=round(float(rng.uniform(0.6, 0.99)), 4)))
        write_export(tmp / "bench" / f"fined_{t}.csv", rows)
    import_benchmark(tmp / "bench", name="mini", tracking_uri=uri)


def _estimates(client, uri):
    from mlflow.entities import Metric

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, "transferability/mini")
    rng = np.random.default_rng(1)
    for m in METRICS:
        for s in SOURCES:
            for t in TARGETS:
                tags = {schema.KIND: schema.KIND_ESTIMATE, schema.SOURCE: s, schema.TARGET: t,
                        schema.ARCH: "resnet", schema.METRIC: m}
                run = client.create_run(exp, tags=tags)
                client.log_batch(run.info.run_id, metrics=[
                    Metric("score", float(rng.normal()), 0, 0)])
                client.set_terminated(run.info.run_id)


def _sweep(client, uri):
    from mlflow.entities import Metric

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, "sweep/s1")
    t0 = 1_700_000_000_000
    parent = client.create_run(exp, start_time=t0, tags={schema.KIND: schema.KIND_SWEEP,
                                                         schema.SWEEP: "s1"})
    # The parent's own metric must not count as a trial.
    client.log_batch(parent.info.run_id, metrics=[Metric("val_loss", 0.01, t0, 0)])
    for i, (s, t, losses) in enumerate(TRIALS, start=1):
        run = client.create_run(exp, start_time=t0 + 1000 * i, tags={
            schema.KIND: schema.KIND_TRIAL, schema.SWEEP: "s1", schema.SOURCE: s,
            schema.TARGET: t, schema.ARCH: "resnet", schema.METHOD: "finetune",
            schema.PARENT_RUN_ID: parent.info.run_id})
        metrics = [Metric("val_loss", v, t0 + 1000 * i + k, k) for k, v in enumerate(losses)]
        metrics += [Metric("val_auc", 1 - v, t0 + 1000 * i + k, k) for k, v in enumerate(losses)]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


@pytest.fixture(scope="module")
def report_store(tmp_path_factory) -> str:
    """sqlite URI of a store with benchmark/mini, transferability/mini and sweep/s1."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("report_store")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    _benchmark(tmp, uri)
    client = MlflowClient(tracking_uri=uri)
    _estimates(client, uri)
    _sweep(client, uri)
    return uri


@pytest.fixture(scope="module")
def report_dir(report_store, tmp_path_factory):
    """The report of ``report_store`` written by the CLI: (uri, output folder)."""
    from medxfer.cli import main

    out = tmp_path_factory.mktemp("report")
    code = main(["report", "--name", "mini", "--estimates", "mini", "--output", str(out),
                 "--tracking-uri", report_store])
    assert code == 0
    return report_store, out
