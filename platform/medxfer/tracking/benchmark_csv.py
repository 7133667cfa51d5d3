"""Parse and validate published benchmark run logs (the MLflow UI's CSV export format).

Each ``fined_<target>.csv`` row is one fine-tuning run. The layout (``shared/benchmark/
medmnist-transfer/README.md``): info columns (``Start Time``, ``Duration``, ``Run ID``, ``Name``,
``Source Type``, ``Source Name``, ``User``, ``Status``), then the params from ``batch_size``
through ``workload_listener`` in export order, then numeric metric columns.

Parsing is all-or-nothing per file: the first bad cell raises
:class:`~medxfer.errors.MedxferInputError` naming file, line and column, and nothing of the file
is returned. ``_imnet`` files are the architecture benchmark (``source_flag`` holds the
architecture, the source is ImageNet); the others the dataset benchmark (ResNet18).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema

REQUIRED_COLUMNS = ("Run ID", "Status", "source_flag", "target_flag", "val_loss", "test_auc")
INFO_COLUMNS = ("Start Time", "Duration", "Run ID", "Name", "Source Type", "Source Name", "User",
                "Status")
FIRST_PARAM = "batch_size"
LAST_PARAM = "workload_listener"
# Exported status -> status recorded. RUNNING/SCHEDULED runs never finished: recorded as KILLED,
# the original kept in tag medxfer.origin_status.
STATUS_MAP = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED",
              "RUNNING": "KILLED", "SCHEDULED": "KILLED"}
MLFLOW_SOURCE_TYPES = {"NOTEBOOK", "JOB", "PROJECT", "LOCAL", "UNKNOWN", "RECIPE"}
# Start Time is the exporting browser's local time (README: Europe/Berlin).
DEFAULT_TIMEZONE = "Europe/Berlin"
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s|min|h|d)\s*$")
_DURATION_MS = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
FILE_GLOB = "fined_*.csv"


@dataclass
class BenchmarkRun:
    """One exported run, ready to be written to any MLflow store."""

    origin_run_id: str
    name: str
    status: str
    start_time: int | None
    end_time: int | None
    user: str
    params: list[tuple[str, str]]
    metrics: list[tuple[str, float]]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchmarkFile:
    path: Path
    benchmark: str
    runs: list[BenchmarkRun]


def benchmark_kind(path: Path) -> str:
    """``architecture`` for ``fined_<target>_imnet.csv``, else ``dataset``."""
    return (schema.BENCHMARK_ARCHITECTURE if path.stem.endswith("_imnet")
            else schema.BENCHMARK_DATASET)


def parse_duration_ms(text: str) -> int:
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like '29.1min', '11.7s', '2.3h', got {text!r}")
    return round(float(m.group(1)) * _DURATION_MS[m.group(2)])


def parse_start_ms(text: str, tz: ZoneInfo) -> int:
    try:
        dt = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"expected a time like '2024-08-28 10:10:06', got {text!r}") from None
    return round(dt.replace(tzinfo=tz).timestamp() * 1000)


def find_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        raise MedxferInputError("benchmark directory not found (expected a folder of "
                                f"{FILE_GLOB} MLflow CSV exports)", path=str(d))
    files = sorted(d.glob(FILE_GLOB))
    if not files:
        raise MedxferInputError(f"no {FILE_GLOB} files in this directory (expected the MLflow "
                                "CSV exports of the transfer benchmark)", path=str(d))
    return files


def parse_file(path: str | Path, *, timezone: str = DEFAULT_TIMEZONE) -> BenchmarkFile:
    """Parse one export; raise :class:`MedxferInputError` on the first bad cell."""
    path = Path(path)
    tz = ZoneInfo(timezone)
    kind = benchmark_kind(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise MedxferInputError("empty file (expected a CSV header)", path=str(path)) from None
        except csv.Error as exc:
            raise MedxferInputError(f"malformed CSV: {exc}", path=str(path), line=1) from None
        col = {name: i for i, name in enumerate(header)}
        if len(col) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise MedxferInputError(f"duplicate columns {dup}", path=str(path), line=1)
        missing = [c for c in (*REQUIRED_COLUMNS, FIRST_PARAM, LAST_PARAM) if c not in col]
        if missing:
            raise MedxferInputError(
                f"missing required column(s) {missing}; expected the MLflow CSV export layout "
                f"with {list(REQUIRED_COLUMNS)} and params {FIRST_PARAM}..{LAST_PARAM}",
                path=str(path), line=1)
        p0, p1 = col[FIRST_PARAM], col[LAST_PARAM]
        if p1 < p0:
            raise MedxferInputError(f"column {LAST_PARAM!r} comes before {FIRST_PARAM!r}",
                                    path=str(path), line=1)
        param_idx = list(range(p0, p1 + 1))
        metric_idx = list(range(p1 + 1, len(header)))
        for c in ("val_loss", "test_auc"):
            if col[c] <= p1:
                raise MedxferInputError(f"metric column {c!r} lies among the params",
                                        path=str(path), line=1, field=c)
        get = {name: col.get(name) for name in INFO_COLUMNS}

        runs: list[BenchmarkRun] = []
        seen: set[str] = set()
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise MedxferInputError(
                        f"expected {len(header)} cells, found {len(row)}",
                        path=str(path), line=line)
                runs.append(_parse_row(path, line, header, row, get, param_idx, metric_idx,
                                       col, kind, tz, seen))
        except csv.Error as exc:
            raise MedxferInputError(f"malformed CSV: {exc}", path=str(path),
                                    line=reader.line_num) from None
    return BenchmarkFile(path=path, benchmark=kind, runs=runs)


def _cell(row, idx):
    return row[idx] if idx is not None else ""


def _parse_row(path, line, header, row, get, param_idx, metric_idx, col, kind, tz, seen):
    def err(msg, column):
        return MedxferInputError(msg, path=str(path), line=line, field=column)

    run_id = row[col["Run ID"]].strip()
    if not run_id:
        raise err("empty run id", "Run ID")
    if run_id in seen:
        raise err(f"duplicate run id {run_id!r}", "Run ID")
    seen.add(run_id)

    origin_status = row[col["Status"]].strip()
    if origin_status not in STATUS_MAP:
        raise err(f"unknown status {origin_status!r}; expected one of {sorted(STATUS_MAP)}",
                  "Status")
    start = end = None
    if get["Start Time"] is not None and row[get["Start Time"]].strip():
        try:
            start = parse_start_ms(row[get["Start Time"]], tz)
        except ValueError as exc:
            raise err(str(exc), "Start Time") from None
    if get["Duration"] is not None and row[get["Duration"]].strip():
        try:
            dur = parse_duration_ms(row[get["Duration"]])
        except ValueError as exc:
            raise err(str(exc), "Duration") from None
        if start is not None:
            end = start + dur

    params = [(header[i], row[i]) for i in param_idx if row[i] != ""]
    metrics = []
    for i in metric_idx:
        text = row[i]
        if text == "":
            continue  # an empty cell is an absent metric, never 0 or NaN
        try:
            value = float(text)
        except ValueError:
            raise err(f"malformed number {text!r}", header[i]) from None
        if not math.isfinite(value):
            raise err(f"non-finite metric value {text!r}", header[i])
        metrics.append((header[i], value))

    source_flag = row[col["source_flag"]].strip()
    target = row[col["target_flag"]].strip()
    if not source_flag:
        raise err("empty source flag", "source_flag")
    if not target:
        raise err("empty target flag", "target_flag")
    if kind == schema.BENCHMARK_ARCHITECTURE:
        source, arch = "imagenet", source_flag
    else:
        source, arch = source_flag, "resnet"
    source_type = _cell(row, get["Source Type"]).strip() or "UNKNOWN"
    user = _cell(row, get["User"]).strip() or "unknown"
    name = _cell(row, get["Name"]) or run_id
    tags = {
        schema.KIND: schema.KIND_IMPORT,
        schema.SOURCE: source,
        schema.TARGET: target,
        schema.ARCH: arch,
        schema.METHOD: "finetune",
        schema.BENCHMARK: kind,
        schema.ORIGIN_RUN_ID: run_id,
        schema.ORIGIN_STATUS: origin_status,
        schema.ORIGIN_FILE: path.name,
        "mlflow.user": user,
        "mlflow.source.type": source_type,
        "mlflow.source.name": _cell(row, get["Source Name"]),
    }
    tags[schema.RUN_NAME] = name
    return BenchmarkRun(origin_run_id=run_id, name=name, status=STATUS_MAP[origin_status],
                        start_time=start, end_time=end, user=user, params=params,
                        metrics=metrics, tags=tags)
