"""Write small benchmark exports in the MLflow UI's CSV layout (as in shared/benchmark)."""

from __future__ import annotations

import csv
from pathlib import Path

INFO = ["Start Time", "Duration", "Run ID", "Name", "Source Type", "Source Name", "User",
        "Status"]
PARAMS = ["batch_size", "epochs", "file", "letter", "listeners", "lr", "manual", "max_epoch",
          "max_time", "model", "momentum", "params", "source_flag", "target_flag", "wd",
          "workload", "workload_listener"]
METRICS = ["SMI - GPU Util", "TOP - CPU Utilization", "stopped_at", "test_acc", "test_auc",
           "test_loss", "val_acc", "val_auc", "val_loss"]
HEADER = INFO + PARAMS + METRICS

_counter = [0]


def run_row(source: str, target: str, *, val_loss: float | str | None, test_auc: float | str | None,
            lr: str = "0.01", wd: str = "0.0", momentum: str = "0.9", batch_size: str = "64",
            status: str = "FINISHED", start: str = "2024-08-28 10:10:06", duration: str = "29.1min",
            run_id: str | None = None, extra_metrics: dict | None = None) -> dict:
    _counter[0] += 1
    rid = run_id or f"{_counter[0]:032x}"
    row = {
        "Start Time": start, "Duration": duration, "Run ID": rid,
        "Name": f"({_counter[0]} 0) run-{_counter[0]}", "Source Type": "PROJECT",
        "Source Name": "/home/u/proj", "User": "doju", "Status": status,
        "batch_size": batch_size, "epochs": "200", "file": "fine-tuning.py", "letter": "0",
        "listeners": "smi+top", "lr": lr, "manual": "False", "max_epoch": "5",
        "max_time": "172800", "model": "fine-tuning.py", "momentum": momentum,
        "params": "'\"-\"'", "source_flag": source, "target_flag": target, "wd": wd,
        "workload": "0", "workload_listener": "''",
        "SMI - GPU Util": "", "TOP - CPU Utilization": "5.2", "stopped_at": "199",
        "test_acc": "0.5", "test_auc": "" if test_auc is None else str(test_auc),
        "test_loss": "1.5", "val_acc": "0.5", "val_auc": "0.7",
        "val_loss": "" if val_loss is None else str(val_loss),
    }
    if val_loss is None and test_auc is None:
        for m in METRICS:
            row[m] = ""
    row.update(extra_metrics or {})
    return row


def write_export(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def comparable(run) -> dict:
    """What must agree between two copies of a run (ids and artifact paths excluded)."""
    return {
        "status": run.info.status, "start": run.info.start_time, "end": run.info.end_time,
        "name": run.info.run_name, "user": run.info.user_id,
        "lifecycle": run.info.lifecycle_stage,
        "params": dict(run.data.params), "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }
