"""The one query module: every consumer reads medxfer runs from MLflow through here.

Ground truth is a query, never a copy (DESIGN.md): per (source, target) — or (arch, target) for
the architecture benchmark — the ``metric`` of the run with the best ``select_by``. The same
function answers for imported benchmarks (``benchmark/<name>``) and for our own sweeps
(``sweep/<name>``), because both carry the run schema's tags.

One read path, two readers of the same run table (:func:`_runs`): on SQL stores one SQL query
reads exactly the needed tags, params and latest metrics (~0.3 s for the 28,205-run benchmark);
on a tracking server (``http(s)://``) started with ``--app-name medxfer``
(:mod:`medxfer.tracking.server_app`) the server runs that same SQL query on its store; on a stock
server the documented REST endpoint ``runs/search`` is paged with the largest ``max_results`` the
server accepts, narrowed by a filter on the server, and only the needed fields of its JSON are
kept (no ``Run`` objects). Which runs belong to a table (the
benchmark/kind rule, :func:`_in_table`) is decided once, on either reader's records;
the server filter only narrows what travels. Every reader talks to the store it is given, never
to MLflow's process-wide tracking URI, and a read never creates a store.

The ground truth is computed without pandas or SQLAlchemy (plain records; sqlite through the
standard library, opened read-only), so ``medxfer benchmark ground-truth --format csv`` answers
within a second of start-up; the public functions return DataFrames built from those records.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tracking.uri import is_sql_uri, resolve_tracking_uri, sqlite_path

if TYPE_CHECKING:
    import pandas as pd

MODES = ("min", "max")

#: The most runs one ``runs/search`` request may ask for: MLflow 3.17's server rejects more
#: (``mlflow/server/handlers.py``, ``_search_runs``: ``max_results <= 50000``).
SERVER_MAX_RESULTS = 50_000
#: Read timeout of one ``runs/search`` page unless ``MLFLOW_HTTP_REQUEST_TIMEOUT`` is set: a
#: 50,000-run page of the benchmark takes minutes on a loaded server, MLflow's default is 120 s.
SEARCH_PAGE_TIMEOUT_S = 900
#: ``metrics.<key> >= this`` matches every run that has the metric (MLflow stores -inf as
#: -max float and NaN as 0 with a flag), so it narrows a search without losing a candidate.
_ANY_VALUE = "-1.7976931348623157e308"
_HISTORY_WORKERS = 8


@dataclass(frozen=True)
class Selection:
    benchmark: str = schema.BENCHMARK_DATASET
    metric: str = "test_auc"
    select_by: str = "val_loss"
    mode: str = "min"

    def __post_init__(self):
        schema.row_key(self.benchmark)  # validates the benchmark kind
        if self.mode not in MODES:
            raise MedxferInputError(f"mode {self.mode!r}: expected one of {', '.join(MODES)}",
                                    field="mode")


def _is_server_uri(uri: str) -> bool:
    return uri.split("://", 1)[0].lower() in ("http", "https")


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


# --- SQL stores ----------------------------------------------------------------------------------

_ENGINES: dict = {}
#: Memory-map a sqlite store for reading (the join below visits ~170k index entries for the
#: benchmark; mapped pages skip a copy per page). Read-only connections only; no file change.
_SQLITE_MMAP_BYTES = 1 << 30


def _engine(uri: str):
    """One SQLAlchemy engine per SQL store URI for this process (MLflow itself is not imported:
    the SQL read path needs only the tables)."""
    import sqlalchemy as sa

    if uri not in _ENGINES:
        _ENGINES[uri] = sa.create_engine(uri)
    return _ENGINES[uri]


def _expand(query: str, binds: dict) -> tuple[str, dict]:
    """``IN :name`` with a list value -> ``IN (:name_0, :name_1, ...)`` (``IN (NULL)`` for an
    empty list): one spelling of a query for the standard library's sqlite3 and SQLAlchemy."""
    import re

    out = {}
    for name, value in binds.items():
        if not isinstance(value, (list, tuple)):
            out[name] = value
            continue
        keys = [f"{name}_{i}" for i in range(len(value))]
        out.update(zip(keys, value, strict=True))
        inner = ", ".join(f":{k}" for k in keys) or "NULL"
        query = re.sub(rf":{name}\b", f"({inner})", query)
    return query, out


def _sql_rows(uri: str, query: str, binds: dict) -> list[tuple]:
    """Rows of ``query`` (``:name`` binds; a list value expands an ``IN``). A database that is
    not an MLflow store is bad input, not a crash.

    A plain ``sqlite:///PATH`` store is read with the standard library, read-only (no engine,
    no SQLAlchemy import: a third of the ground-truth verb's time); other stores through
    SQLAlchemy.
    """
    query, binds = _expand(query, binds)
    db = sqlite_path(uri)
    if db is not None and "?" not in uri:
        return _sqlite_rows(uri, db, query, binds)
    import sqlalchemy as sa

    try:
        with _engine(uri).connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), binds).all()]
    except sa.exc.DBAPIError as exc:
        raise MedxferInputError(f"cannot read MLflow's tables: {exc.orig}", path=uri) from None


def _sqlite_rows(uri: str, db, query: str, binds: dict) -> list[tuple]:
    import sqlite3
    from urllib.parse import quote

    try:
        conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)
        try:
            conn.execute(f"PRAGMA mmap_size = {_SQLITE_MMAP_BYTES}")
            return conn.execute(query, binds).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise MedxferInputError(f"cannot read MLflow's tables: {exc}", path=uri) from None


def _store_absent(uri: str) -> bool:
    """A sqlite store whose file does not exist: empty for readers, and left uncreated."""
    db = sqlite_path(uri)
    return db is not None and not db.exists()


# --- experiments ---------------------------------------------------------------------------------

def _experiments(uri: str, kind: str) -> dict[str, str]:
    """``{full name: experiment id}`` of the active ``kind/*`` experiments."""
    prefix = f"{kind}/"
    if is_sql_uri(uri):
        if _store_absent(uri):
            return {}
        rows = _sql_rows(uri, "SELECT name, experiment_id FROM experiments "
                              "WHERE lifecycle_stage = 'active' AND name LIKE :p",
                         {"p": prefix + "%"})
        return {n: str(i) for n, i in rows if n.startswith(prefix)}
    c, found, token = _client(uri), {}, None
    while True:
        page = c.search_experiments(filter_string=f"name LIKE '{prefix}%'",
                                    max_results=SERVER_MAX_RESULTS, page_token=token)
        found.update({e.name: e.experiment_id for e in page if e.name.startswith(prefix)})
        token = page.token
        if not token:
            return found


def list_experiments(tracking_uri: str | None = None, kind: str = "benchmark") -> list[str]:
    """Names (without the ``kind/`` prefix) of the active ``kind/<name>`` experiments."""
    uri = resolve_tracking_uri(tracking_uri)
    return sorted(n[len(kind) + 1:] for n in _experiments(uri, kind))


def resolve_experiment(tracking_uri: str | None, name: str | None,
                       kind: str = "benchmark") -> str:
    """Full experiment name for ``--name``: ``kind/<name>``, or a full ``sweep/<name>`` etc.

    Without a name: the only ``kind/*`` experiment in the store; none or several is an error that
    lists them.
    """
    if name:
        if "/" in name:
            prefix = name.split("/", 1)[0]
            if prefix not in schema.EXPERIMENT_PREFIXES:
                valid = ", ".join(p + "/<name>" for p in schema.EXPERIMENT_PREFIXES)
                raise MedxferInputError(f"experiment {name!r}: expected '<name>' or one of "
                                        f"{valid}", field="name")
            return name
        return schema.experiment_name(kind, name)
    names = list_experiments(tracking_uri, kind)
    if len(names) == 1:
        return schema.experiment_name(kind, names[0])
    uri = resolve_tracking_uri(tracking_uri)
    if not names:
        raise MedxferInputError(f"no {kind}/* experiment in the store {uri}; import one with "
                                "`medxfer benchmark import DIR` or pass --name", field="name")
    raise MedxferInputError(f"several {kind} experiments in {uri}: {', '.join(names)}; "
                            "choose one with --name", field="name")


def _experiment_ids(uri: str, experiment: str) -> list[str]:
    """Ids of ``experiment``, or of every experiment its ``*`` pattern matches
    (e.g. ``sweep/demo-*``: the ground truth of several sweeps is one table)."""
    if "*" not in experiment:
        return [_experiment_id(uri, experiment)]
    import fnmatch

    found = _experiments(uri, experiment.split("/", 1)[0])
    ids = [i for n, i in sorted(found.items()) if fnmatch.fnmatchcase(n, experiment)]
    if not ids:
        raise MedxferInputError(f"no experiment matches {experiment!r} in {uri}", field="name")
    return ids


def _experiment_id(uri: str, experiment: str) -> str:
    exp_id = _experiments(uri, experiment.split("/", 1)[0]).get(experiment)
    if exp_id is None:
        raise MedxferInputError(f"experiment {experiment!r} not found in {uri}", field="name")
    return exp_id


# --- the run table: one frame, read from a SQL store or a tracking server ------------------------

@dataclass(frozen=True)
class _Fields:
    """What to read of each run: tag, param and latest-metric keys; ``required`` tags (a run
    without one is not read)."""

    tags: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        return (["run_id", "experiment_id", "start_time"] + [f"tags.{k}" for k in self.tags]
                + [f"params.{k}" for k in self.params] + [f"metrics.{k}" for k in self.metrics])


Record = dict  # one run: ``_Fields.columns()`` -> value


def _runs(uri: str, exp_ids: list[str], fields: _Fields, server_filters: list[str]
          ) -> list[Record]:
    """The active runs of ``exp_ids`` with ``fields``: one record per run, keys
    ``fields.columns()`` (tags/params: str or None; metrics: float, NaN if absent or NaN;
    ``experiment_id``: str; ``start_time``: ms). ``server_filters`` (MLflow search syntax,
    OR-ed) narrow what a tracking server sends; they must keep every run the caller's own
    filter keeps.
    """
    if is_sql_uri(uri):
        rows = _runs_sql(uri, exp_ids, fields)
    elif _is_server_uri(uri):
        rows = _runs_table_endpoint(uri, exp_ids, fields)
        if rows is None:  # a stock server: MLflow's runs/search
            rows = _runs_rest(uri, exp_ids, fields, server_filters)
    else:  # other MLflow stores (file:): the public client
        rows = _runs_client(uri, exp_ids, fields)
    cols = fields.columns()
    required = [f"tags.{k}" for k in fields.required]
    metrics = [f"metrics.{k}" for k in fields.metrics]
    records = []
    for row in rows:
        rec = dict(zip(cols, row, strict=True))
        if any(rec[c] is None for c in required):
            continue
        rec["experiment_id"] = str(rec["experiment_id"])
        for c in metrics:
            rec[c] = math.nan if rec[c] is None else float(rec[c])
        records.append(rec)
    return records


def _frame(records: list[Record], columns: list[str], metrics: tuple[str, ...] = ()
           ) -> pd.DataFrame:
    """``records`` as a DataFrame with ``columns`` (``start_time`` numeric, metrics float)."""
    import pandas as pd

    df = pd.DataFrame(records, columns=columns)
    if "start_time" in df:
        df["start_time"] = pd.to_numeric(df["start_time"])
    for k in metrics:
        df[f"metrics.{k}"] = pd.to_numeric(df[f"metrics.{k}"]).astype(float)
    return df


def _runs_sql(uri: str, exp_ids: list[str], fields: _Fields) -> list[tuple]:
    binds: dict = {"exp_ids": [int(i) for i in exp_ids]}
    cols, joins = [], []
    for i, k in enumerate(fields.tags):
        binds[f"t{i}"] = k
        join = "JOIN" if k in fields.required else "LEFT JOIN"
        cols.append(f"t{i}.value")
        joins.append(f"{join} tags t{i} ON t{i}.run_uuid = r.run_uuid AND t{i}.key = :t{i}")
    for i, k in enumerate(fields.params):
        binds[f"p{i}"] = k
        cols.append(f"p{i}.value")
        joins.append(f"LEFT JOIN params p{i} ON p{i}.run_uuid = r.run_uuid AND p{i}.key = :p{i}")
    for i, k in enumerate(fields.metrics):
        binds[f"m{i}"] = k
        cols.append(f"CASE WHEN m{i}.is_nan THEN NULL ELSE m{i}.value END")
        joins.append(f"LEFT JOIN latest_metrics m{i} ON m{i}.run_uuid = r.run_uuid "
                     f"AND m{i}.key = :m{i}")
    query = f"""
        SELECT r.run_uuid, r.experiment_id, r.start_time{"".join(", " + c for c in cols)}
        FROM runs r {" ".join(joins)}
        WHERE r.experiment_id IN :exp_ids AND r.lifecycle_stage = 'active'
    """
    return _sql_rows(uri, query, binds)


def _http_timeout() -> float:
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT

    return (MLFLOW_HTTP_REQUEST_TIMEOUT.get() if MLFLOW_HTTP_REQUEST_TIMEOUT.is_set()
            else SEARCH_PAGE_TIMEOUT_S)


#: Servers found without the table endpoint in this process (asked once, then runs/search).
_NO_TABLE_ENDPOINT: set[str] = set()


def _runs_table_endpoint(uri: str, exp_ids: list[str], fields: _Fields) -> list[tuple] | None:
    """The run table from a server started with ``--app-name medxfer``
    (:mod:`medxfer.tracking.server_app`): the server runs :func:`_runs_sql` on its own store,
    seconds instead of minutes for the benchmark. ``None`` when the server has no such endpoint
    (a stock server, or one whose store is not SQL): the caller pages ``runs/search``."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    from medxfer.tracking.server_app import TABLE_ENDPOINT

    if uri in _NO_TABLE_ENDPOINT:
        return None
    body = {"experiment_ids": list(exp_ids), "tags": list(fields.tags),
            "params": list(fields.params), "metrics": list(fields.metrics),
            "required": list(fields.required)}
    resp = http_request(get_default_host_creds(uri), TABLE_ENDPOINT, "POST", json=body,
                        timeout=_http_timeout())
    if resp.status_code in (404, 405):
        _NO_TABLE_ENDPOINT.add(uri)
        return None
    if resp.status_code != 200:
        verify_rest_response(resp, TABLE_ENDPOINT)  # raises MLflow's error for the status
    answer = resp.json()
    if answer.get("columns") != fields.columns():
        raise MedxferInputError(f"{uri}{TABLE_ENDPOINT} answered columns {answer.get('columns')}"
                                f", expected {fields.columns()}: a different medxfer version "
                                "on the server?", path=uri)
    return [tuple(r) for r in answer["rows"]]


def _search_pages(uri: str, exp_ids: list[str], filter_string: str) -> Iterator[dict]:
    """Runs (as the REST API's JSON dicts) of ``POST /api/2.0/mlflow/runs/search``.

    MLflow's own HTTP layer (``http_request``: credentials, TLS settings, retries) sends the
    request; the JSON is read once, without building protobuf messages or ``Run`` objects,
    which costs more than the transfer for large stores.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    endpoint = "/api/2.0/mlflow/runs/search"
    creds = get_default_host_creds(uri)
    timeout = _http_timeout()
    body = {"experiment_ids": list(exp_ids), "filter": filter_string,
            "run_view_type": "ACTIVE_ONLY", "max_results": SERVER_MAX_RESULTS}
    while True:
        resp = http_request(creds, endpoint, "POST", json=body, timeout=timeout)
        if resp.status_code != 200:
            verify_rest_response(resp, endpoint)  # raises MLflow's error for the status
        page = resp.json()
        yield from page.get("runs", ())
        token = page.get("next_page_token")
        if not token:
            return
        body["page_token"] = token


def _record_from_json(run: dict, fields: _Fields) -> tuple:
    info, data = run["info"], run.get("data", {})
    tags = {t["key"]: t.get("value", "") for t in data.get("tags", ())}
    params = {p["key"]: p.get("value", "") for p in data.get("params", ())} if fields.params else {}
    # The REST API writes NaN and infinities as the strings "NaN" and "Infinity".
    metrics = {m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics", ())}
    start = info.get("start_time")
    return (info["run_id"], info["experiment_id"], None if start is None else int(start),
            *(tags.get(k) for k in fields.tags), *(params.get(k) for k in fields.params),
            *(metrics.get(k, math.nan) for k in fields.metrics))


def _runs_rest(uri: str, exp_ids: list[str], fields: _Fields,
               server_filters: list[str]) -> list[tuple]:
    required = [f"tags.`{k}` IS NOT NULL" for k in fields.required]
    records: dict[str, tuple] = {}
    for extra in server_filters or [""]:
        where = " AND ".join(c for c in [*required, extra] if c)
        for run in _search_pages(uri, exp_ids, where):
            rid = run["info"]["run_id"]
            if rid not in records:  # the OR-ed filters may overlap
                records[rid] = _record_from_json(run, fields)
    return list(records.values())


def _runs_client(uri: str, exp_ids: list[str], fields: _Fields) -> list[tuple]:
    c, records, token = _client(uri), [], None
    while True:
        page = c.search_runs(exp_ids, max_results=SERVER_MAX_RESULTS, page_token=token)
        for run in page:
            tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
            records.append((run.info.run_id, run.info.experiment_id, run.info.start_time,
                            *(tags.get(k) for k in fields.tags),
                            *(params.get(k) for k in fields.params),
                            *(metrics.get(k, math.nan) for k in fields.metrics)))
        token = page.token
        if not token:
            return records


# --- which runs make a benchmark table -----------------------------------------------------------

_TABLE_TAGS = (schema.BENCHMARK, schema.SOURCE, schema.KIND)


def _in_table(runs: list[Record], benchmark: str) -> list[Record]:
    """The runs of a benchmark table (the one place this rule is written).

    A run belongs to the dataset table if tagged dataset (or untagged: sweeps that feed no named
    benchmark); to the architecture table if tagged architecture, or if it is a
    dataset-benchmark run from ImageNet (that is ResNet18/ImageNet: the architecture table's
    ``resnet`` row). A sweep's parent run (``medxfer.kind=sweep``) is never a table run.
    """
    bench_col, src_col = f"tags.{schema.BENCHMARK}", f"tags.{schema.SOURCE}"
    kind_col = f"tags.{schema.KIND}"

    def keep(run: Record) -> bool:
        bench = run[bench_col]
        bench = schema.BENCHMARK_DATASET if bench is None else bench
        ok = bench == benchmark or (benchmark == schema.BENCHMARK_ARCHITECTURE
                                    and bench == schema.BENCHMARK_DATASET
                                    and run[src_col] == "imagenet")
        return ok and run[kind_col] != schema.KIND_SWEEP

    return [r for r in runs if keep(r)]


def _table_server_filters(benchmark: str) -> list[str]:
    """Server-side narrowing for :func:`_in_table` (a superset of it: MLflow's filter language
    has no OR, so each alternative is one search)."""
    bench, src = f"tags.`{schema.BENCHMARK}`", f"tags.`{schema.SOURCE}`"
    if benchmark == schema.BENCHMARK_ARCHITECTURE:
        return [f"{bench} = '{schema.BENCHMARK_ARCHITECTURE}'",
                f"{bench} = '{schema.BENCHMARK_DATASET}' AND {src} = 'imagenet'"]
    return [f"{bench} = '{schema.BENCHMARK_DATASET}'", f"{bench} IS NULL"]


def _architecture_targets_only(runs: list[Record], benchmark: str) -> list[Record]:
    """The architecture table's targets are those of the architecture benchmark; the dataset
    benchmark only lends its ImageNet/ResNet18 runs for them."""
    if benchmark != schema.BENCHMARK_ARCHITECTURE:
        return runs
    bench_col = f"tags.{schema.BENCHMARK}"
    own = {r["target"] for r in runs if r[bench_col] == benchmark}
    return [r for r in runs if r["target"] in own] if own else runs


def _table_runs(uri: str, exp_ids: list[str], benchmark: str, *, params: tuple[str, ...] = (),
                metrics: tuple[str, ...] = (), need_metrics: bool = False
                ) -> tuple[list[Record], list[str]]:
    """The runs of one benchmark table and their columns: ``run_id``, ``row`` (flag),
    ``target``, the table tags (``tags.<key>``), ``params.<key>`` and ``metrics.<key>``.

    ``need_metrics``: only runs that have every metric matter to the caller, so the server may
    leave the others out (the caller drops NaN values either way).
    """
    row_tag = schema.row_key(benchmark)
    fields = _Fields(tags=tuple(dict.fromkeys((row_tag, schema.TARGET, *_TABLE_TAGS))),
                     params=params, metrics=metrics, required=(row_tag, schema.TARGET))
    filters = _table_server_filters(benchmark)
    if need_metrics:
        has = " AND ".join(f"metrics.`{m}` >= {_ANY_VALUE}" for m in metrics)
        filters = [f"{f} AND {has}" for f in filters]
    runs = _in_table(_runs(uri, exp_ids, fields, filters), benchmark)
    for r in runs:
        r["row"], r["target"] = r[f"tags.{row_tag}"], r[f"tags.{schema.TARGET}"]
    return runs, [*fields.columns(), "row", "target"]


# --- ground truth --------------------------------------------------------------------------------

SELECTED_COLS = ["row", "target", "run_id", "select_by", "value", "n_runs"]


def _selection(tracking_uri: str | None, name: str | None, sel: Selection,
               kind: str) -> list[tuple]:
    """:func:`selected_runs` as tuples (``SELECTED_COLS``), sorted by row and target."""
    uri = resolve_tracking_uri(tracking_uri)
    experiment = resolve_experiment(uri, name, kind)
    exp_ids = _experiment_ids(uri, experiment)
    keys = tuple(dict.fromkeys((sel.select_by, sel.metric)))
    runs, _ = _table_runs(uri, exp_ids, sel.benchmark, metrics=keys, need_metrics=True)
    by_col, value_col = f"metrics.{sel.select_by}", f"metrics.{sel.metric}"
    runs = [r for r in runs if not (math.isnan(r[by_col]) or math.isnan(r[value_col]))]
    sign = 1.0 if sel.mode == "min" else -1.0
    best: dict[tuple[str, str], tuple] = {}
    n: dict[tuple[str, str], int] = {}
    for r in _architecture_targets_only(runs, sel.benchmark):
        by, value = r[by_col], r[value_col]
        pair = (r["row"], r["target"])
        n[pair] = n.get(pair, 0) + 1
        # Ties at the best value: the smaller run id, so the answer is deterministic.
        rank = (sign * by, r["run_id"])
        if pair not in best or rank < best[pair][0]:
            best[pair] = (rank, r["run_id"], by, value)
    return [(*pair, rid, by, value, n[pair])
            for pair, (_, rid, by, value) in sorted(best.items())]


def selected_runs(tracking_uri: str | None = None, name: str | None = None, *,
                  benchmark: str = schema.BENCHMARK_DATASET, metric: str = "test_auc",
                  select_by: str = "val_loss", mode: str = "min",
                  kind: str = "benchmark") -> pd.DataFrame:
    """Long form of the ground truth: one row per (row flag, target) with the selected run.

    Columns: ``row`` (source or arch flag), ``target``, ``run_id``, ``select_by`` value,
    ``value`` (the metric of the selected run), ``n_runs`` (runs of that pair with both metrics).
    Ties at the best ``select_by`` are broken by run id, so the answer is deterministic.
    """
    import pandas as pd

    sel = Selection(benchmark, metric, select_by, mode)
    rows = _selection(tracking_uri, name, sel, kind)
    if not rows:
        return pd.DataFrame(columns=SELECTED_COLS)
    return pd.DataFrame(rows, columns=SELECTED_COLS)


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth table without pandas: ``cells[i][j]`` is the metric for ``index[i]``
    (source or arch) and ``columns[j]`` (target), NaN where a pair has no run."""

    index: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[float, ...], ...]
    index_name: str = "source"  # CSV layout: first column `source` (archs too)

    @property
    def empty(self) -> bool:
        return not self.index

    def scaled(self, factor: float) -> GroundTruth:
        cells = tuple(tuple(v * factor for v in row) for row in self.cells)
        return GroundTruth(self.index, self.columns, cells, self.index_name)

    def frame(self) -> pd.DataFrame:
        """The table as a float DataFrame (index named ``index_name``)."""
        import pandas as pd

        return pd.DataFrame(list(self.cells), index=pd.Index(list(self.index),
                                                             name=self.index_name),
                            columns=pd.Index(list(self.columns)), dtype=float)


def ground_truth_table(tracking_uri: str | None = None, name: str | None = None, *,
                       benchmark: str = schema.BENCHMARK_DATASET, metric: str = "test_auc",
                       select_by: str = "val_loss", mode: str = "min",
                       kind: str = "benchmark") -> GroundTruth:
    """:func:`ground_truth` without pandas (what the CLI prints as CSV)."""
    sel = Selection(benchmark, metric, select_by, mode)
    values = {(row, target): value
              for row, target, _, _, value, _ in _selection(tracking_uri, name, sel, kind)}
    index = tuple(sorted({row for row, _ in values}))
    columns = tuple(sorted({target for _, target in values}))
    cells = tuple(tuple(values.get((row, t), math.nan) for t in columns) for row in index)
    return GroundTruth(index, columns, cells)


def ground_truth(tracking_uri: str | None = None, name: str | None = None, *,
                 benchmark: str = schema.BENCHMARK_DATASET, metric: str = "test_auc",
                 select_by: str = "val_loss", mode: str = "min",
                 kind: str = "benchmark") -> pd.DataFrame:
    """Ground-truth table: rows = sources (or archs), columns = targets, values = ``metric``.

    A pair with no run is NaN. Rows and columns are sorted by flag name.
    """
    return ground_truth_table(tracking_uri, name, benchmark=benchmark, metric=metric,
                              select_by=select_by, mode=mode, kind=kind).frame()


# --- the logged grid: one row per run with its params and metrics (benchmark replay) ---------

def grid_runs(tracking_uri: str | None = None, name: str | None = None, *,
              benchmark: str = schema.BENCHMARK_DATASET,
              params: tuple[str, ...] = ("lr", "wd", "momentum", "batch_size"),
              metrics: tuple[str, ...] = ("val_loss", "test_auc"),
              kind: str = "benchmark") -> pd.DataFrame:
    """Every logged run of a benchmark table with its hyperparameters and final metrics.

    One row per run: ``run_id``, ``row`` (source or arch flag, as in :func:`selected_runs`),
    ``target``, the ``params`` (strings as logged; None where a run lacks one) and the
    ``metrics`` (floats; NaN where absent, e.g. FAILED imported runs). Same run selection as the
    ground truth (benchmark table, architecture targets, no sweep parent runs), so the row with
    the best ``val_loss`` of a pair is the ground-truth run. Sorted by row, target, run id.
    """
    Selection(benchmark)  # validates the benchmark kind
    params, metrics = tuple(dict.fromkeys(params)), tuple(dict.fromkeys(metrics))
    uri = resolve_tracking_uri(tracking_uri)
    experiment = resolve_experiment(uri, name, kind)
    records, columns = _table_runs(uri, [_experiment_id(uri, experiment)], benchmark,
                                   params=params, metrics=metrics)
    runs = _frame(_architecture_targets_only(records, benchmark), columns, metrics)
    runs = runs.rename(columns={**{f"params.{p}": p for p in params},
                                **{f"metrics.{m}": m for m in metrics}})
    runs = runs[["run_id", "row", "target", *params, *metrics]]
    return runs.sort_values(["row", "target", "run_id"]).reset_index(drop=True)


# --- sweep trials -------------------------------------------------------------------------------

TRIAL_COLS = ["sweep", "run_id", "start_time", "source", "target", "arch", "key", "step", "value"]
_HISTORY_COLS = ["run_id", "key", "step", "value", "timestamp"]


def sweep_trials(tracking_uri: str | None = None, names: list[str] | None = None, *,
                 metrics: tuple[str, ...] = ("val_loss", "val_auc")) -> pd.DataFrame:
    """Per-step metric histories of the trial runs of sweep experiments (for best-so-far plots).

    Args:
        names: sweep names (``<name>`` or ``sweep/<name>``); default: every ``sweep/*``
            experiment. A named sweep that is not in the store raises ``MedxferInputError``.
        metrics: the metric keys to read (their full history, one row per logged step).

    Returns:
        Long DataFrame with ``TRIAL_COLS``: ``sweep`` (name without prefix), ``run_id``,
        ``start_time`` (ms), the ``source``/``target``/``arch`` tags (None if untagged), ``key``,
        ``step``, ``value``. Trials are the runs tagged ``medxfer.kind=trial``; the sweep's
        parent run is not one. A step logged twice keeps its later value; NaN values are left
        out; sorted by sweep, start, run, key, step.
    """
    import pandas as pd

    uri = resolve_tracking_uri(tracking_uri)
    experiments = _experiments(uri, "sweep")
    if names:
        wanted = [resolve_experiment(uri, n, "sweep") for n in names]
        missing = [n for n in wanted if n not in experiments]
        if missing:
            raise MedxferInputError(f"sweep experiment(s) {', '.join(missing)} not found in {uri}",
                                    field="sweep")
        experiments = {n: experiments[n] for n in wanted}
    metrics = tuple(dict.fromkeys(metrics))
    if not experiments or not metrics:
        return pd.DataFrame(columns=TRIAL_COLS)
    fields = _Fields(tags=(schema.KIND, schema.SOURCE, schema.TARGET, schema.ARCH),
                     required=(schema.KIND,))
    records = _runs(uri, list(experiments.values()), fields,
                    [f"tags.`{schema.KIND}` = '{schema.KIND_TRIAL}'"])
    records = [r for r in records if r[f"tags.{schema.KIND}"] == schema.KIND_TRIAL]
    runs = _frame(records, fields.columns())
    if runs.empty:
        return pd.DataFrame(columns=TRIAL_COLS)
    history = _last_write_per_step(_histories(uri, list(runs["run_id"]), metrics))
    names_by_id = {i: n.split("/", 1)[1] for n, i in experiments.items()}
    runs = pd.DataFrame({"sweep": runs["experiment_id"].map(names_by_id), "run_id": runs["run_id"],
                         "start_time": runs["start_time"],
                         "source": runs[f"tags.{schema.SOURCE}"],
                         "target": runs[f"tags.{schema.TARGET}"],
                         "arch": runs[f"tags.{schema.ARCH}"]})
    df = runs.merge(history, on="run_id").dropna(subset=["value"])
    if df.empty:
        return pd.DataFrame(columns=TRIAL_COLS)
    df = df.sort_values(["sweep", "start_time", "run_id", "key", "step"])
    return df[TRIAL_COLS].reset_index(drop=True)


def _last_write_per_step(history: pd.DataFrame) -> pd.DataFrame:
    """One value per (run, key, step): the later write wins, as in MLflow's own latest metric
    (ties in time: the larger value, MLflow's order)."""
    history = history.sort_values(["timestamp", "value"], na_position="first", kind="stable")
    return history.drop_duplicates(["run_id", "key", "step"], keep="last").drop(
        columns="timestamp")


def _histories(uri: str, run_ids: list[str], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Every logged value (all steps) of ``metrics`` for ``run_ids``: ``_HISTORY_COLS``."""
    import pandas as pd

    if is_sql_uri(uri):
        records = _histories_sql(uri, run_ids, metrics)
    else:
        records = _histories_client(uri, run_ids, metrics)
    df = pd.DataFrame(records, columns=_HISTORY_COLS)
    df["step"] = pd.to_numeric(df["step"])
    df["value"] = pd.to_numeric(df["value"]).astype(float)
    return df


def _histories_sql(uri: str, run_ids: list[str], metrics: tuple[str, ...]) -> list[tuple]:
    query = """
        SELECT run_uuid, key, step, CASE WHEN is_nan THEN NULL ELSE value END, timestamp
        FROM metrics WHERE run_uuid IN :ids AND key IN :keys
    """
    chunk = 5_000  # below every SQL backend's limit on bound parameters
    return [r for i in range(0, len(run_ids), chunk)
            for r in _sql_rows(uri, query, {"ids": run_ids[i:i + chunk], "keys": list(metrics)})]


def _histories_client(uri: str, run_ids: list[str], metrics: tuple[str, ...]) -> list[tuple]:
    from concurrent.futures import ThreadPoolExecutor

    c = _client(uri)

    def one(job):
        rid, key = job
        return [(rid, key, m.step, m.value, m.timestamp) for m in c.get_metric_history(rid, key)]

    jobs = [(rid, key) for rid in run_ids for key in metrics]
    with ThreadPoolExecutor(max_workers=min(_HISTORY_WORKERS, len(jobs))) as pool:
        return [r for rows in pool.map(one, jobs) for r in rows]


# --- runs with files: analyses and studies --------------------------------------------------------

def kind_runs(tracking_uri: str | None, prefix: str, kind: str,
              params: tuple[str, ...] = ()) -> list[dict]:
    """The active runs tagged ``medxfer.kind=<kind>`` in the ``<prefix>/*`` experiments (e.g.
    ``analysis`` runs, ``study`` parent runs): dicts with ``experiment`` (name without the
    prefix), ``run_id``, ``start_time`` (ms), ``analysis`` (the ``medxfer.analysis`` tag or
    None) and ``params`` (the run's values of ``params``, None where unset), sorted by
    experiment and start."""
    uri = resolve_tracking_uri(tracking_uri)
    experiments = _experiments(uri, prefix)
    if not experiments:
        return []
    fields = _Fields(tags=(schema.KIND, schema.ANALYSIS), params=params, required=(schema.KIND,))
    records = _runs(uri, list(experiments.values()), fields,
                    [f"tags.`{schema.KIND}` = '{kind}'"])
    names = {i: n.split("/", 1)[1] for n, i in experiments.items()}
    out = [{"experiment": names[r["experiment_id"]], "run_id": r["run_id"],
            "start_time": int(r["start_time"] or 0), "analysis": r[f"tags.{schema.ANALYSIS}"],
            "params": {k: r[f"params.{k}"] for k in params}}
           for r in records if r[f"tags.{schema.KIND}"] == kind]
    return sorted(out, key=lambda r: (r["experiment"], r["start_time"], r["run_id"]))


def run_files(tracking_uri: str | None, run_id: str, dest, *,
              suffixes: tuple[str, ...] = (".png", ".csv"),
              only: tuple[str, ...] | None = None) -> dict[str, str]:
    """Download the top-level artifact files of ``run_id`` ending in ``suffixes`` (and named in
    ``only``, if given) into folder ``dest``, from the store given (not MLflow's process-wide
    one); returns ``{file name: local path}``."""
    from mlflow import MlflowClient

    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    out = {}
    bar = os.environ.get(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name)
    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"  # a bar per small file
    try:
        for info in client.list_artifacts(run_id):
            if info.is_dir or not info.path.endswith(suffixes):
                continue
            if only is None or info.path in only:
                out[info.path] = client.download_artifacts(run_id, info.path, str(dest))
    finally:
        if bar is None:
            os.environ.pop(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, None)
        else:
            os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = bar
    return out


STUDY_TABLE = "study_table.csv"


def study_tables(tracking_uri: str | None = None, names: list[str] | None = None
                 ) -> list[dict]:
    """The studies of the store (``study/<name>`` parents, ``medxfer.kind=study``), newest
    first per experiment: ``experiment``, ``study``, ``run_id``, ``start_time``, ``metric`` (the
    parent's ``protocol.metric`` param: the table's ``test_<metric>``, None if unrecorded) and
    ``table`` (the parent's ``study_table.csv`` as a DataFrame indexed by method row; None while
    the study has not written it). ``names``: only these studies (without the ``study/`` prefix).
    """
    import tempfile

    import pandas as pd

    runs = [r for r in kind_runs(tracking_uri, "study", schema.KIND_STUDY,
                                 params=("protocol.metric",))
            if names is None or r["experiment"] in names]
    runs.sort(key=lambda r: (r["experiment"], -r["start_time"]))
    out = []
    for r in runs:
        with tempfile.TemporaryDirectory(prefix="medxfer-study-") as tmp:
            files = run_files(tracking_uri, r["run_id"], tmp, suffixes=(".csv",),
                              only=(STUDY_TABLE,))
            table = (pd.read_csv(files[STUDY_TABLE], index_col=0, dtype=str,
                                 keep_default_na=False) if STUDY_TABLE in files else None)
        out.append({"experiment": f"study/{r['experiment']}", "study": r["experiment"],
                    "run_id": r["run_id"], "start_time": r["start_time"],
                    "metric": r["params"]["protocol.metric"], "table": table})
    return out
