"""The data a run used (n_train, ...) are run params, not metrics, on every logging path."""

from __future__ import annotations

from medxfer.tracking.runs import log_report, metrics_to_log, params_to_log


def test_report_params_split_from_metrics():
    report = {"epoch": 2, "train_loss": 0.5, "n_train": 120.0, "n_val": 30.0,
              "selection_crc": 4294967295.0, "n_labelled": 12.5}
    step, metrics = metrics_to_log(report)
    assert step == 2 and metrics == {"train_loss": 0.5}
    assert params_to_log(report) == {"n_train": "120", "n_val": "30",
                                     "selection_crc": "4294967295", "n_labelled": "12.5"}


def test_log_report_writes_params_once_per_value(tracking_uri):
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=tracking_uri)
    run = c.create_run(c.create_experiment("p"))
    for epoch in (1, 2):  # every step repeats the same data params
        log_report(c, run.info.run_id, {"epoch": epoch, "val_loss": 1.0 / epoch,
                                        "n_train": 64.0})
    data = c.get_run(run.info.run_id).data
    assert data.params == {"n_train": "64"} and "n_train" not in data.metrics
    assert [m.step for m in c.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
