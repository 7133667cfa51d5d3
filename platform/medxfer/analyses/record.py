"""Where an analysis' results go: files in an output folder, then one MLflow run.

An analysis writes its tables (CSV) and figures (PNG) into a staging folder beside ``--output``;
only when it has finished are they moved into ``--output`` and logged, as artifacts of one run in
experiment ``analysis/<name>`` tagged ``medxfer.kind=analysis`` and ``medxfer.analysis=<verb>``
(DESIGN.md run schema), with its params and metrics. A failure leaves neither files nor a run.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from medxfer.errors import MedxferInputError


@dataclass
class AnalysisResult:
    """What one analysis produced.

    Attributes:
        params: Inputs and options (logged as MLflow params).
        metrics: Numbers (logged as MLflow metrics; NaN values are left out).
        files: Names of the files written into the output folder.
        lines: Summary for the console.
        tags: Extra run tags (e.g. ``medxfer.source``).
    """

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def write_csv(path: Path, header: tuple, rows: list) -> str:
    """Write a CSV table; return its file name (for :attr:`AnalysisResult.files`)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path.name


@contextlib.contextmanager
def staging(output: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``output``; its files move into ``output`` on success only."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise MedxferInputError("exists and is not a folder", path=str(out), field="--output")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        out.mkdir(exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log_run(tracking_uri: str | None, name: str, analysis: str, result: AnalysisResult,
            output: str | os.PathLike) -> str:
    """Record ``result`` as a run in ``analysis/<name>``; return its run id.

    Artifacts are the result's files in ``output`` (at the artifact root of the run).
    """
    import math
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment
    from medxfer.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    try:
        experiment = schema.experiment_name("analysis", name)
    except ValueError as exc:
        raise MedxferInputError(str(exc), field="--name") from None
    exp_id = ensure_experiment(uri, experiment)
    client = MlflowClient(tracking_uri=uri)
    tags = {schema.KIND: schema.KIND_ANALYSIS, schema.ANALYSIS: analysis, **result.tags}
    run = client.create_run(exp_id, run_name=analysis, tags=tags)
    run_id = run.info.run_id
    status = "FAILED"
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in result.metrics.items()
                     if v is not None and math.isfinite(float(v))],
            params=[Param(k, str(v)[:6000]) for k, v in result.params.items()])
        for f in result.files:
            client.log_artifact(run_id, str(Path(output) / f))
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
    return run_id
