"""A study's table: mean +- std of each cell over folds and seeds, in the papers' shape.

Rows are the study's method rows; columns, as in seed ``000_3dd3de5c534b555f.txt`` Table 2 and
seed ``001_a9715376ac5cbd5d.txt`` Table II:

* ``ID`` (``ID 50%``, ``ID M=10`` with label fractions or counts): each training cell's
  ``test_<metric>`` (its fold's test part, or the source's test split);
* ``<set> 0%``: the same models zero-shot on a test set's test part (``<set>_test_<metric>``
  of the training cells);
* ``<set> 10%`` ...: the few-shot cells fine-tuned on that fraction of the set's training part
  (their ``test_<metric>``);
* a shortcut study (``protocol.shortcut``) has a column per share, ``ID p_art=0.5`` and
  ``ood 0% (ID p_art=0.5)``; :func:`record_shortcut` adds its curves, permutation tests and
  figure (thesis, seed ``004_43f54b618356cecf.txt``, Fig. 4.3).

A cell is ``"0.91 ± 0.02"``: the mean and the sample standard deviation (ddof 1; 0 for a single
value) of the values of its runs, one per fold and seed. :func:`summarize` shapes the table
(pure, from the records of :func:`medxfer.tune.study.cell_records`); :func:`record_summary`
writes it to the study's parent run: metrics ``<row>/<column>/mean``, ``/std``, ``/n``,
``study_cells.json`` (every cell with its values and run ids) and ``study_table.{csv,md,tex,txt}``
(:func:`medxfer.reports.tables.render`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import pandas as pd

_METRIC_NAME = re.compile(r"[^A-Za-z0-9_.\-/ ]+")


@dataclass
class StudySummary:
    """``cells``: one row per (method row, column) with ``n``, ``mean``, ``std``, ``values``,
    ``run_ids``; ``table``: method rows x columns of ``"mean ± std"`` strings."""

    cells: "pd.DataFrame"
    table: "pd.DataFrame"
    metric: str


def _pct(f: float) -> str:
    return f"{100 * f:g}%"


def _columns(record: dict, metric: str) -> Iterable[tuple[tuple, str, str, str]]:
    """``(order, column key, label, metric name)`` of each value a cell run contributes."""
    m = record["metrics"]
    p_art = record.get("p_art")
    if record["phase"] == "transfer":
        f = record["fraction"] or 1.0
        extra = ("", "") if p_art is None else (f" (p_art={p_art:g})", f"_p{p_art:g}")
        yield ((1, record["test_set"], f, p_art or 0.0), f"{record['test_set']}_{f:g}{extra[1]}",
               f"{record['test_set']} {_pct(f)}{extra[0]}", f"test_{metric}")
        return
    frac, count = record.get("fraction"), record.get("n_labelled")
    lab = f" {_pct(frac)}" if frac is not None else f" M={count}" if count else ""
    lab_key = f"_{frac:g}" if frac is not None else f"_n{count}" if count else ""
    size = -(frac if frac is not None else count if count else math.inf)
    if p_art is not None:  # a shortcut study: a column per share
        lab, lab_key, size = f"{lab} p_art={p_art:g}", f"{lab_key}_p{p_art:g}", (size, p_art)
    yield (0, "", size), f"id{lab_key}", f"ID{lab}", f"test_{metric}"
    suffix = f"_test_{metric}"
    for key in sorted(k for k in m if k.endswith(suffix) and k != f"test_{metric}"):
        name = key[: -len(suffix)]
        yield ((1, name, 0.0, size), f"{name}_0{lab_key}", f"{name} 0%" +
               (f" (ID{lab})" if lab else ""), key)


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(records: list[dict], *, metric: str = "auc", rows: list[str] | None = None,
              number: str = ".2f") -> StudySummary:
    """Mean +- std per (method row, column) of finished cell runs (module docstring).

    Args:
        records: cell runs (``row``, ``phase``, ``fraction``, ``n_labelled``, ``test_set``,
            ``metrics``, ``run_id``, ``status``).
        metric: the table's metric (``test_<metric>``).
        rows: the table's row order (default: sorted).
        number: format of mean and std in the table.
    """
    import pandas as pd

    groups: dict[tuple[str, str], dict] = {}
    for r in records:
        if r.get("status") not in (None, "FINISHED"):
            continue
        for order, key, label, name in _columns(r, metric):
            value = r["metrics"].get(name)
            if value is None or not math.isfinite(value):
                continue
            g = groups.setdefault((r["row"], key), {"row": r["row"], "column": label,
                                                    "column_key": key, "order": order,
                                                    "values": [], "run_ids": []})
            g["values"].append(float(value))
            g["run_ids"].append(r["run_id"])
    cells = pd.DataFrame([{**g, "n": len(g["values"]),
                           "mean": sum(g["values"]) / len(g["values"]),
                           "std": _std(g["values"])} for g in groups.values()],
                         columns=["row", "column", "column_key", "order", "n", "mean", "std",
                                  "values", "run_ids"])
    order = rows or sorted(cells["row"].unique())
    labels = [c for _, c in sorted(set(zip(cells["order"], cells["column"], strict=True)))]
    table = pd.DataFrame(index=pd.Index(order, name="method"), columns=labels, dtype=object)
    for c in cells.itertuples():
        table.loc[c.row, c.column] = f"{c.mean:{number}} ± {c.std:{number}}"
    return StudySummary(cells.drop(columns="order"), table, metric)


def metric_name(row: str, column_key: str, stat: str) -> str:
    """The parent run's metric of one cell statistic, ``<row>/<column>/<stat>``."""
    return _METRIC_NAME.sub("_", f"{row}/{column_key}/{stat}")


def record_summary(tracking_uri: str, parent_run_id: str, summary: StudySummary, *,
                   title: str | None = None) -> dict[str, str]:
    """Write ``summary`` to the study's parent run (module docstring); returns the table's
    text by format."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from medxfer.reports.tables import FORMATS, SUFFIX, render

    client = MlflowClient(tracking_uri=tracking_uri)
    now = int(time.time() * 1000)
    metrics = [Metric(metric_name(c.row, c.column_key, stat), float(getattr(c, stat)), now, 0)
               for c in summary.cells.itertuples() for stat in ("mean", "std", "n")]
    for i in range(0, len(metrics), 500):
        client.log_batch(parent_run_id, metrics=metrics[i:i + 500])
    client.log_dict(parent_run_id, {"metric": f"test_{summary.metric}",
                                    "cells": summary.cells.to_dict(orient="records")},
                    "study_cells.json")
    texts = {}
    for fmt in FORMATS:
        texts[fmt] = render(summary.table, fmt, title=title)
        client.log_text(parent_run_id, texts[fmt], f"study_table{SUFFIX[fmt]}")
    return texts


#: The parent run's artifacts of a shortcut study (:func:`record_shortcut`).
SHORTCUT_CURVES, SHORTCUT_TESTS, SHORTCUT_FIGURE = ("shortcut_curves.csv",
                                                     "shortcut_permutation.csv",
                                                     "shortcut_auc.png")


def record_shortcut(tracking_uri: str, parent_run_id: str, records: list[dict], *,
                    title: str, metric: str = "auc") -> str | None:
    """A shortcut study's mean ``metric`` with 95 % CI per source, set and ``p_art``
    (``shortcut_curves.csv``), the permutation tests between sources
    (``shortcut_permutation.csv``; :mod:`medxfer.evaluation.shortcut`) and the figure
    (``shortcut_auc.png``, :func:`medxfer.reports.figures.shortcut_png`) on the parent run.
    Returns why the figure was not drawn, or None."""
    import tempfile
    from pathlib import Path

    from mlflow import MlflowClient

    from medxfer.evaluation.shortcut import shortcut_curves, source_permutations
    from medxfer.reports.figures import shortcut_png, shortcut_unavailable

    curves = shortcut_curves(records, metric)
    tests = source_permutations(records, metric)
    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_text(parent_run_id, curves.to_csv(index=False), SHORTCUT_CURVES)
    client.log_text(parent_run_id, tests.to_csv(index=False), SHORTCUT_TESTS)
    reason = shortcut_unavailable(curves)
    if reason is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = shortcut_png(curves, Path(tmp) / SHORTCUT_FIGURE, title=title,
                                metric=metric.upper())
            client.log_artifact(parent_run_id, str(path))
    return reason
