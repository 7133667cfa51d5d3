"""The full published benchmark (shared/benchmark): import, idempotence, the thesis' tables."""

from __future__ import annotations

import math

import mlflow
import pytest
import sqlalchemy as sa
from thesis_tables import TABLE_6_4, TABLE_6_5, TARGETS

from medxfer.tracking import schema
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tracking.query import ground_truth

N_RUNS = 28_205


def _count(uri, sql):
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as c:
            return c.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_import_counts_and_idempotence(benchmark_store, benchmark_dir):
    uri, first = benchmark_store
    assert (first.files, first.runs_in_files, first.written) == (23, N_RUNS, N_RUNS)
    again = import_benchmark(benchmark_dir, name="medmnist-transfer", tracking_uri=uri)
    assert (again.written, again.skipped) == (0, N_RUNS)
    assert _count(uri, "SELECT COUNT(*) FROM runs") == N_RUNS
    assert _count(uri, "SELECT COUNT(DISTINCT value) FROM tags WHERE key = "
                       f"'{schema.ORIGIN_RUN_ID}'") == N_RUNS
    # README: 1,671 FAILED + 9 RUNNING (recorded KILLED) architecture runs, no metrics.
    assert _count(uri, "SELECT COUNT(*) FROM runs WHERE status = 'FAILED'") == 1671
    assert _count(uri, "SELECT COUNT(*) FROM runs WHERE status = 'KILLED'") == 9


def test_reads_back_through_mlflow(benchmark_store):
    uri, _ = benchmark_store
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(
        experiment_names=["benchmark/medmnist-transfer"],
        filter_string=f"tags.`{schema.SOURCE}` = 'imagenet' and "
                      f"tags.`{schema.TARGET}` = 'breastmnist' and tags.`{schema.ARCH}` = 'resnet'")
    assert len(df) == 120  # the grid: 6 lr x 5 wd x 2 momentum x 2 batch sizes
    best = df.loc[df["metrics.val_loss"].idxmin()]
    assert round(best["metrics.test_auc"] * 100, 2) == 88.51  # README spot value
    assert set(df["params.lr"]) == {"1.0", "0.1", "0.01", "0.001", "0.0001", "1e-05"}


@pytest.mark.parametrize("benchmark,table", [("dataset", TABLE_6_4),
                                             ("architecture", TABLE_6_5)])
def test_ground_truth_matches_thesis_tables(benchmark_store, benchmark, table):
    uri, _ = benchmark_store
    gt = ground_truth(uri, benchmark=benchmark)
    assert set(table) <= set(gt.index)
    mismatches = []
    for row, values in table.items():
        for target, expected in zip(TARGETS, values):
            got = gt.loc[row, target]
            if expected is None:
                assert math.isnan(got), (row, target)
            elif round(got * 100, 2) != expected:
                mismatches.append((row, target, round(got * 100, 2), expected))
    assert not mismatches
    if benchmark == "architecture":
        assert sorted(gt.index) == sorted(table)
        assert list(gt.columns) == TARGETS
