"""Read transferability scores and ground truth into sources x targets tables.

Score directory (the layout the thesis published): one CSV per metric named ``<metric>_*.csv``
(or ``<metric>.csv``), e.g. ``logme_scores.csv``; an optional unnamed leading index column,
then a column ``source``, then one column per target. Cells are numbers; an empty cell or
``nan`` is a missing score (e.g. the published ``lp`` files at source == target).

NCTI: ``ncti_*.csv`` holds the *combined* score (as published, in [0, 3]). Alternatively give its
raw terms as three files ``ncti_seli_*.csv``, ``ncti_ncc_*.csv`` and ``ncti_vc_*.csv``; they are
combined across sources by min-max normalisation (``combine("ncti", ...)``). Giving both forms,
or only some of the terms, is an error. ``lp_fu`` is never read: it is computed from ``lp_*.csv``
and ``fu_*.csv`` (so ``--invert lp_fu`` can apply eq. 6.8).

MLflow: runs of experiment ``transferability/<name>`` tagged ``medxfer.kind=estimate`` with
``medxfer.source`` / ``medxfer.arch`` (rows, by benchmark), ``medxfer.target`` and
``medxfer.metric``; the value is metric ``score``, except ``ncti`` runs, which carry its raw terms
as metrics ``seli``, ``ncc`` and ``vc`` (``score`` is not read for them). Runs tagged
``medxfer.skip_reason`` (a metric that could not run for a source, e.g. LEEP without a source
head) are left out. ``medxfer estimate score`` keeps one run per (source, arch, target, metric)
and logs a re-score at the next step, so the latest value is read. Where several runs share
(row, target, metric) the latest started wins.

Ground-truth CSV: first column ``source`` (after an optional unnamed index column), then one
column per target; test AUC on a 0-1 scale.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.transferability.combine import NCTI_TERMS
from medxfer.transferability.evaluation import METRIC_ORDER

# Names a score file may start with: every reported metric except the computed lp_fu, plus
# NCTI's raw terms as ``ncti_<term>``.
FILE_METRICS = (tuple(m for m in METRIC_ORDER if m != "lp_fu")
                + tuple(f"ncti_{t}" for t in NCTI_TERMS))


def read_table_csv(path: str | Path, *, what: str = "score") -> pd.DataFrame:
    """Read one ``source``, target... CSV into a float DataFrame (index ``source``).

    Raises:
        MedxferInputError: naming file, line and column for a missing ``source`` column, a
            duplicate source or target, an empty source name or a non-numeric / infinite cell.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise MedxferInputError(f"empty {what} file; expected a header 'source,<target>,...'",
                                    path=str(path), line=1)
        skip = 1 if header[0].strip() == "" else 0  # pandas' unnamed index column
        header = [h.strip() for h in header]
        if len(header) <= skip or header[skip] != "source":
            raise MedxferInputError(
                f"expected column 'source' first{' after the unnamed index column' if skip else ''}"
                f", found {header[skip] if len(header) > skip else 'nothing'!r}",
                path=str(path), line=1, field="source")
        targets = header[skip + 1:]
        if not targets:
            raise MedxferInputError("no target columns after 'source'", path=str(path), line=1)
        for i, t in enumerate(targets):
            if not t or t in targets[:i]:
                raise MedxferInputError(f"{'empty' if not t else 'duplicate'} target column name",
                                        path=str(path), line=1, field=t or f"#{skip + 2 + i}")
        rows, sources = [], []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise MedxferInputError(f"{len(row)} cells, expected {len(header)}",
                                        path=str(path), line=line)
            src = row[skip].strip()
            if not src or src in sources:
                raise MedxferInputError(f"{'empty' if not src else 'duplicate'} source {src!r}",
                                        path=str(path), line=line, field="source")
            sources.append(src)
            rows.append([_cell(c, path, line, t) for c, t in zip(row[skip + 1:], targets)])
    if not rows:
        raise MedxferInputError(f"no {what} rows", path=str(path), line=2)
    return pd.DataFrame(rows, index=pd.Index(sources, name="source"), columns=targets)


def _cell(text: str, path: Path, line: int, field: str) -> float:
    text = text.strip()
    if text == "" or text.lower() == "nan":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise MedxferInputError(f"not a number: {text!r}", path=str(path), line=line,
                                field=field) from None
    if math.isinf(value):
        raise MedxferInputError(f"not finite: {text!r}", path=str(path), line=line, field=field)
    return value


def metric_of_file(path: Path) -> str:
    """``<metric>[_anything].csv`` -> metric (longest known name wins: ``ncti_vc_x`` -> ncti_vc)."""
    stem = path.stem
    if stem == "lp_fu" or stem.startswith("lp_fu_"):  # would otherwise read as an lp file
        raise MedxferInputError("lp_fu is not read from a file: it is computed from the lp and fu "
                                "files (so --invert lp_fu can apply eq. 6.8)", path=str(path))
    hits = [m for m in FILE_METRICS if stem == m or stem.startswith(m + "_")]
    if not hits:
        raise MedxferInputError(
            f"file name does not start with a metric name; expected <metric>_*.csv with "
            f"metric one of {', '.join(FILE_METRICS)}", path=str(path))
    return max(hits, key=len)


def read_score_dir(directory: str | Path) -> dict:
    """Read every ``*.csv`` of a score directory.

    Returns metric -> table (ncti terms -> ``{term: table}``).
    """
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if not files:
        raise MedxferInputError("no <metric>_*.csv score files", path=str(directory))
    by_metric: dict[str, Path] = {}
    for p in files:
        m = metric_of_file(p)
        if m in by_metric:
            raise MedxferInputError(f"two files for metric {m!r} (also {by_metric[m].name})",
                                    path=str(p))
        by_metric[m] = p
    scores: dict = {}
    terms = {m.removeprefix("ncti_"): p for m, p in by_metric.items() if m.startswith("ncti_")}
    if terms:
        if "ncti" in by_metric:
            raise MedxferInputError("both a combined ncti file and ncti term files; keep one form",
                                    path=str(by_metric["ncti"]))
        missing = [t for t in NCTI_TERMS if t not in terms]
        if missing:
            raise MedxferInputError(
                f"ncti terms need all of {', '.join(f'ncti_{t}_*.csv' for t in NCTI_TERMS)}; "
                f"missing {', '.join(missing)}", path=str(directory))
        scores["ncti"] = {t: read_table_csv(terms[t]) for t in NCTI_TERMS}
    for m, p in by_metric.items():
        if not m.startswith("ncti_"):
            scores[m] = read_table_csv(p)
    return scores


def read_ground_truth_csv(path: str | Path) -> pd.DataFrame:
    """Ground-truth CSV -> sources x targets test AUC (0-1)."""
    gt = read_table_csv(path, what="ground-truth")
    bad = ((gt < 0) | (gt > 1)).to_numpy().nonzero()
    if len(bad[0]):
        src, tgt = gt.index[bad[0][0]], gt.columns[bad[1][0]]
        raise MedxferInputError(f"AUC {gt.loc[src, tgt]:g} outside 0-1 (DESIGN.md: AUC is on a "
                                f"0-1 scale)", path=str(path), line=_line_of(Path(path), src),
                                field=str(tgt))
    return gt


def _line_of(path: Path, source: str) -> int | None:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        col = 1 if header[0].strip() == "" else 0
        for row in reader:
            if len(row) > col and row[col].strip() == source:
                return reader.line_num
    return None


def check_overlap(scores: dict, ground_truth: pd.DataFrame, *, scores_from: str,
                  ground_truth_from: str) -> None:
    """Raise unless some score table shares at least one target and two sources with the truth."""
    tables = [t for v in scores.values() for t in (v.values() if isinstance(v, dict) else [v])]
    targets = set().union(*(t.columns for t in tables)) & set(ground_truth.columns)
    if not targets:
        raise MedxferInputError(
            "no target in common between the scores "
            f"({_names(set().union(*(t.columns for t in tables)))})"
            f" and the ground truth {ground_truth_from} ({_names(ground_truth.columns)})",
            path=scores_from)
    sources = set().union(*(t.index for t in tables)) & set(ground_truth.index)
    if len(sources) < 2:
        raise MedxferInputError(
            f"fewer than two sources in common between the scores "
            f"({_names(set().union(*(t.index for t in tables)))}) and the ground truth "
            f"{ground_truth_from} ({_names(ground_truth.index)})", path=scores_from)


def _names(items, limit: int = 8) -> str:
    items = sorted(map(str, items))
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def read_scores_mlflow(tracking_uri: str, name: str, *, benchmark: str = "dataset") -> dict:
    """Estimate runs of ``transferability/<name>`` -> metric -> rows x targets table.

    Rows are ``medxfer.source`` for the dataset benchmark and ``medxfer.arch`` for the
    architecture benchmark. ``ncti`` runs give ``{"seli", "ncc", "vc"}`` tables.
    """
    from mlflow import MlflowClient

    from medxfer.tracking import schema
    from medxfer.tracking.query import list_experiments

    row_tag = schema.row_key(benchmark)
    exp_name = schema.experiment_name("transferability", name)
    if name not in list_experiments(tracking_uri, "transferability"):  # creates no store
        raise MedxferInputError(f"no MLflow experiment {exp_name!r} (and no directory {name!r})",
                                path=tracking_uri)
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(exp_name)
    records, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.`{schema.KIND}` = '{schema.KIND_ESTIMATE}'",
                                  max_results=10000, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        for run in page:
            tags, metrics = run.data.tags, run.data.metrics
            if schema.SKIP_REASON in tags:  # the metric could not run for this source
                continue
            metric, row, target = (tags.get(k) for k in (schema.METRIC, row_tag, schema.TARGET))
            if not (metric and row and target):
                raise MedxferInputError(
                    f"run {run.info.run_id} lacks tag {row_tag}, {schema.TARGET} "
                    f"or {schema.METRIC}",
                    path=f"{tracking_uri} {exp_name}")
            values = {t: metrics.get(t) for t in NCTI_TERMS} if metric == "ncti" else \
                {"score": metrics.get("score")}
            for key, val in values.items():
                if val is None:
                    raise MedxferInputError(f"run {run.info.run_id} ({metric}, {row} -> {target}) "
                                            f"has no metric {key!r}",
                                            path=f"{tracking_uri} {exp_name}")
                records.append((metric, key, row, target, float(val)))
        token = page.token
        if not token:
            break
    if not records:
        raise MedxferInputError(f"no runs tagged {schema.KIND}={schema.KIND_ESTIMATE}",
                                path=f"{tracking_uri} {exp_name}")
    df = pd.DataFrame(records, columns=["metric", "key", "row", "target", "value"])
    df = df.drop_duplicates(["metric", "key", "row", "target"], keep="last")  # latest run wins
    out: dict = {}
    for (metric, key), g in df.groupby(["metric", "key"], sort=False):
        table = g.pivot(index="row", columns="target", values="value")
        table.index.name, table.columns.name = "source", None
        if metric == "ncti":
            out.setdefault("ncti", {})[key] = table
        else:
            out[metric] = table
    unknown = [m for m in out if m not in METRIC_ORDER or m == "lp_fu"]
    if unknown:
        raise MedxferInputError(f"unknown metric tag(s) {', '.join(unknown)}",
                                path=f"{tracking_uri} {exp_name}")
    return out
