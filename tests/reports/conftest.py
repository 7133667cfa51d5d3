"""MLflow stores for the report tests, built once per test session from benchmark CSVs
(``import_benchmark``) and runs logged with ``MlflowClient`` in the run schema's tags, so the
report reads what real writers write.

* ``report_store``: a small benchmark, estimates and one sweep, all with hand-checked values;
  a shortcut study and one run of every `medxfer analyze` verb (`analysis_runs.py`).
* ``wide_store``: the published benchmark's shape (15 sources x 12 targets), the ten metrics
  on two targets, a sweep of one trial: wide tables, a full figure of scores, a figure that
  cannot be drawn. ``no_truth_store`` is a copy without the benchmark.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_csvs import run_row, write_export

from .analysis_runs import log_analyses, log_shortcut_study

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


def _estimates(client, uri, name="mini", metrics=METRICS, sources=SOURCES, targets=TARGETS):
    from mlflow.entities import Metric

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, f"transferability/{name}")
    rng = np.random.default_rng(1)
    for m in metrics:
        keys = ("seli", "ncc", "vc") if m == "ncti" else ("score",)
        for s in sources:
            for t in targets:
                tags = {schema.KIND: schema.KIND_ESTIMATE, schema.SOURCE: s, schema.TARGET: t,
                        schema.ARCH: "resnet", schema.METRIC: m}
                run = client.create_run(exp, tags=tags)
                client.log_batch(run.info.run_id, metrics=[
                    Metric(k, float(rng.normal()), 0, 0) for k in keys])
                client.set_terminated(run.info.run_id)


def _sweep(client, uri, name="s1", trials=TRIALS):
    from mlflow.entities import Metric

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, f"sweep/{name}")
    t0 = 1_700_000_000_000
    parent = client.create_run(exp, start_time=t0, tags={schema.KIND: schema.KIND_SWEEP,
                                                         schema.SWEEP: name})
    # The parent's own metric must not count as a trial.
    client.log_batch(parent.info.run_id, metrics=[Metric("val_loss", 0.01, t0, 0)])
    for i, (s, t, losses) in enumerate(trials, start=1):
        run = client.create_run(exp, start_time=t0 + 1000 * i, tags={
            schema.KIND: schema.KIND_TRIAL, schema.SWEEP: name, schema.SOURCE: s,
            schema.TARGET: t, schema.ARCH: "resnet", schema.METHOD: "finetune",
            schema.PARENT_RUN_ID: parent.info.run_id})
        metrics = [Metric("val_loss", v, t0 + 1000 * i + k, k) for k, v in enumerate(losses)]
        metrics += [Metric("val_auc", 1 - v, t0 + 1000 * i + k, k) for k, v in enumerate(losses)]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


# The cells of study/mini-study, (row, phase, fold, test_set, fraction, metrics), and its table
# by hand: mean ± sample std over folds.
STUDY_CELLS = [("a", "train", k, "src", None, {"test_auc": v, "h1_test_auc": z})
               for k, (v, z) in enumerate([(0.8, 0.5), (0.9, 0.6), (1.0, 0.7)])]
STUDY_CELLS += [("b", "train", k, "src", None, {"test_auc": v, "h1_test_auc": 0.5})
                for k, v in enumerate([0.7, 0.8])]
STUDY_TABLE = {("a", "ID"): "0.90 ± 0.10", ("a", "h1 0%"): "0.60 ± 0.10",
               ("b", "ID"): "0.75 ± 0.07", ("b", "h1 0%"): "0.50 ± 0.00"}


def _study(client, uri, name="mini-study"):
    """A finished study as ``medxfer study`` records it: cell runs under a parent whose table
    the real writer (:func:`medxfer.reports.study.record_summary`) logs."""
    from mlflow.entities import Metric

    from medxfer.reports.study import record_summary, summarize
    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, f"study/{name}")
    parent = client.create_run(exp, tags={schema.KIND: schema.KIND_STUDY, schema.STUDY: name})
    records = []
    for row, phase, fold, test_set, fraction, metrics in STUDY_CELLS:
        run = client.create_run(exp, tags={schema.KIND: schema.KIND_CELL, schema.STUDY: name,
                                           schema.PARENT_RUN_ID: parent.info.run_id})
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0)
                                                   for k, v in metrics.items()])
        client.set_terminated(run.info.run_id)
        records.append({"run_id": run.info.run_id, "row": row, "phase": phase, "fold": fold,
                        "test_set": test_set, "fraction": fraction, "n_labelled": None,
                        "status": "FINISHED", "metrics": metrics})
    record_summary(uri, parent.info.run_id, summarize(records, rows=["a", "b"]))
    client.set_terminated(parent.info.run_id)


@pytest.fixture(scope="package")
def report_store(tmp_path_factory) -> str:
    """sqlite URI of a store with benchmark/mini, transferability/mini, sweep/s1, a shortcut
    study (study/shortcut), study/mini-study and one run of every analysis (analysis/synth)."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("report_store")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    _benchmark(tmp, uri)
    client = MlflowClient(tracking_uri=uri)
    _estimates(client, uri)
    _sweep(client, uri)
    _study(client, uri)
    log_shortcut_study(client, uri)
    log_analyses(tmp, uri)
    return uri


@pytest.fixture(scope="package")
def report_dir(report_store, tmp_path_factory):
    """The report of ``report_store`` written by the CLI: (uri, output folder)."""
    from medxfer.cli import main

    out = tmp_path_factory.mktemp("report")
    code = main(["report", "--name", "mini", "--estimates", "mini", "--output", str(out),
                 "--tracking-uri", report_store])
    assert code == 0
    return report_store, out


# The published benchmark's names: 12 MedMNIST targets; 15 sources (the targets, ImageNet,
# RadImageNet and the leave-target-out pool).
WIDE_TARGETS = ["bloodmnist", "breastmnist", "chestmnist", "dermamnist", "octmnist",
                "organamnist", "organcmnist", "organsmnist", "pathmnist", "pneumoniamnist",
                "retinamnist", "tissuemnist"]
WIDE_SOURCES = WIDE_TARGETS + ["imagenet", "medmnist", "radimagenet"]
ALL_METRICS = ["logme", "leep", "nleep", "parc", "sfda", "ncti", "gbc", "lp", "fu"]


@pytest.fixture(scope="package")
def wide_store(tmp_path_factory) -> str:
    """sqlite URI: benchmark/wide (15 x 12, one run per pair), transferability/wide (the nine
    logged metrics, lp_fu computed, for 5 sources on 2 targets) and sweep/one (one trial)."""
    from mlflow import MlflowClient

    from medxfer.tracking.benchmark_import import import_benchmark

    tmp = tmp_path_factory.mktemp("wide_store")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    rng = np.random.default_rng(4)
    for t in WIDE_TARGETS:
        write_export(tmp / "bench" / f"fined_{t}.csv", [
            run_row(s, t, val_loss=0.5, test_auc=round(float(rng.uniform(0.6, 0.99)), 4))
            for s in WIDE_SOURCES if s != t])
    import_benchmark(tmp / "bench", name="wide", tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    _estimates(client, uri, "wide", ALL_METRICS, ["imagenet", "radimagenet", "medmnist",
                                                  "pathmnist", "chestmnist"],
               ["bloodmnist", "dermamnist"])
    _sweep(client, uri, "one", [("imagenet", "bloodmnist", [0.7, 0.61])])
    return uri


@pytest.fixture(scope="package")
def wide_report(wide_store, tmp_path_factory):
    """The report of ``wide_store`` written by the CLI: (uri, output folder)."""
    from medxfer.cli import main

    out = tmp_path_factory.mktemp("wide_report")
    assert main(["report", "--name", "wide", "--estimates", "wide", "--output", str(out),
                 "--tracking-uri", wide_store]) == 0
    return wide_store, out


@pytest.fixture(scope="package")
def no_truth_store(wide_store, tmp_path_factory) -> str:
    """A copy of ``wide_store`` whose benchmark experiment is deleted: estimates, no truth."""
    import shutil

    from mlflow import MlflowClient

    src = wide_store.removeprefix("sqlite:///")
    dst = tmp_path_factory.mktemp("no_truth") / "mlruns.db"
    shutil.copy(src, dst)
    uri = f"sqlite:///{dst}"
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.get_experiment_by_name("benchmark/wide").experiment_id)
    return uri
