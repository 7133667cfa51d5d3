"""``medxfer benchmark import``: every exported run as one MLflow run, fast, idempotent, atomic.

Two writers, one result:

* **SQL stores** (sqlite, PostgreSQL, MySQL): rows go straight into MLflow's own tables
  (``runs``, ``params``, ``metrics``, ``latest_metrics``, ``tags``) with DB-API ``executemany``
  (``COPY`` on PostgreSQL with psycopg 3), in one transaction. An empty database (or a missing
  sqlite file) is first given MLflow's schema by MLflow itself. This is MLflow-internal (tied
  to the schema of the pinned MLflow, 3.17.2), so the store's schema revision is checked first
  (:func:`check_schema_revision`);
  ``tests/test_benchmark_import.py`` checks that the runs read back through
  ``mlflow.search_runs`` exactly as runs written by MLflow's public client do.
* **HTTP tracking servers**: MLflow's public client, concurrent ``log_batch`` per run. A run is
  three requests (``runs/create`` with its tags, ``runs/log-batch``, ``runs/update``), the
  fewest the REST API allows, and the server commits about six transactions for them; their
  commit latency, not CPU, bounds the rate (profiled: 0.06 s CPU but 0.48 s wall per run
  written sequentially). Requests in flight (``http_workers``) let a PostgreSQL-backed server
  overlap those commits (a sqlite-backed one writes one transaction at a time); the default 8
  stays inside the server's own connection pool (SQLAlchemy's 5 + 10 overflow per server
  worker): 32 in flight ran ~30 % faster on a loaded machine, but with two server workers
  requests waited over 30 s for a connection and the server answered ``QueuePool limit ...
  reached`` (400), which fails the import. Measured in ``benchmarks/import_speed.py``.

Idempotence: a run's id is ``uuid5(experiment name, exported Run ID)``, so a re-import finds what
is there and writes only what is missing. Atomicity: on SQL stores the whole import is one
transaction, so ``kill -9`` at any point leaves it complete or absent. On HTTP stores a run is
created RUNNING and terminated last (imported runs are never RUNNING: RUNNING is recorded as
KILLED), so a re-run deletes runs left RUNNING by an interrupted import and writes them again.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tracking.benchmark_csv import (
    DEFAULT_TIMEZONE,
    BenchmarkFile,
    BenchmarkRun,
    find_files,
    parse_file,
)
from medxfer.tracking.store import ensure_experiment
from medxfer.tracking.uri import is_sql_uri, resolve_tracking_uri, sqlite_path

#: The MLflow schema revision (alembic head of MLflow 3.17.2) whose tables the SQL writer fills.
SUPPORTED_SCHEMA_REVISION = "dc11669786a5"
_SUPPORTED_MLFLOW = "3.17.2"

_NAMESPACE = uuid.UUID("6f0d3c1e-8a4b-4c59-9e0e-6d6564786665")  # medxfer benchmark import

Progress = Callable[[str, int, int], None]


def run_uuid(experiment_name: str, origin_run_id: str) -> str:
    """Deterministic MLflow run id of an imported run (makes re-imports idempotent)."""
    return uuid.uuid5(_NAMESPACE, f"{experiment_name}\x00{origin_run_id}").hex


@dataclass
class ImportResult:
    experiment_name: str
    experiment_id: str
    files: int
    runs_in_files: int
    written: int
    skipped: int
    seconds: float


def import_benchmark(directory: str | Path, *, name: str | None = None,
                     tracking_uri: str | None = None, timezone: str = DEFAULT_TIMEZONE,
                     files: list[Path] | None = None, progress: Progress | None = None,
                     http_workers: int = 8) -> ImportResult:
    """Import every ``fined_*.csv`` of ``directory`` into experiment ``benchmark/<name>``.

    Every file is parsed and validated before anything is written: a bad file raises
    :class:`~medxfer.errors.MedxferInputError` and nothing is recorded.
    """
    t0 = time.perf_counter()
    directory = Path(directory)
    paths = files if files is not None else find_files(directory)
    name = name or directory.resolve().name
    exp_name = schema.experiment_name("benchmark", name)
    parsed = [parse_file(p, timezone=timezone) for p in paths]
    uri = resolve_tracking_uri(tracking_uri)
    if is_sql_uri(uri):
        check_schema_revision(uri)  # before the experiment is created: nothing written
    exp_id = ensure_experiment(uri, exp_name)
    if is_sql_uri(uri):
        sql = _SqlWriter(uri, exp_name, exp_id)
        write, commit, close = sql.write, sql.commit, sql.close
    else:
        def write(bf):
            def each(k: int) -> None:  # per run: a file takes minutes through a server
                if progress:
                    progress(bf.path.name, done + k, total)
            return _write_http(uri, exp_name, exp_id, bf, workers=http_workers, each=each)
        commit = close = None
    written = skipped = done = 0
    total = sum(len(f.runs) for f in parsed)
    try:
        for bf in parsed:
            w, s = write(bf)
            written += w
            skipped += s
            done += len(bf.runs)
            if progress:
                progress(bf.path.name, done, total)
        if commit:
            commit()
    finally:
        if close:
            close()
    return ImportResult(exp_name, exp_id, len(parsed), total, written, skipped,
                        time.perf_counter() - t0)


# --------------------------------------------------------------------------- SQL stores
def check_schema_revision(uri: str) -> None:
    """Refuse a SQL store whose MLflow schema is not the one the bulk writer was written for.

    Reads ``alembic_version`` (MLflow's migration state). A missing sqlite file or an empty
    database passes: MLflow creates its tables at its own head revision, which the writer
    checks again before its first insert.

    Raises:
        MedxferInputError: the store is at another revision (both are named), or the database
            holds tables but no ``alembic_version`` (not an MLflow store).
    """
    import sqlalchemy as sa

    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("alembic_version"):
                if inspector.get_table_names():
                    raise MedxferInputError("not an MLflow store: it has tables but no "
                                            "alembic_version table", path=uri)
                return
            found = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()
    if found != [SUPPORTED_SCHEMA_REVISION]:
        raise MedxferInputError(
            f"MLflow schema revision {', '.join(found) or '(none)'}; the bulk import writes "
            f"MLflow's tables directly and supports only revision {SUPPORTED_SCHEMA_REVISION} "
            f"(MLflow {_SUPPORTED_MLFLOW}). Nothing was written. Bring the store to that revision "
            f"(`mlflow db upgrade` with MLflow {_SUPPORTED_MLFLOW}), or import through an "
            "`mlflow server` of the store's own version (--tracking-uri http://...)",
            path=uri, field="alembic_version")


def _placeholder(paramstyle: str) -> str:
    return {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(paramstyle) or _unsupported(
        paramstyle)


def _unsupported(paramstyle):
    raise RuntimeError(f"DB-API paramstyle {paramstyle!r} is not supported by the bulk import")


def _rows_for(bf: BenchmarkFile, exp_name: str, exp_id: int, artifact_root: str, existing):
    runs, params, metrics, tags = [], [], [], []
    skipped = 0
    root = artifact_root.rstrip("/")
    for r in bf.runs:
        rid = run_uuid(exp_name, r.origin_run_id)
        if rid in existing:
            skipped += 1
            continue
        # Same column values as SqlAlchemyStore.create_run writes for a client-created run
        # (source type/name live in the mlflow.source.* tags, as the client records them).
        runs.append((rid, r.name, "UNKNOWN", "", "", r.user, r.status, r.start_time, r.end_time,
                     "", "active", f"{root}/{rid}/artifacts", exp_id, None))
        params.extend((k, v, rid) for k, v in r.params)
        ts = r.end_time if r.end_time is not None else (r.start_time or 0)
        metrics.extend((k, v, ts, rid, 0, False) for k, v in r.metrics)
        tags.extend((k, v, rid) for k, v in r.tags.items())
    return runs, params, metrics, tags, skipped


_RUN_COLS = ("run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
             "status", "start_time", "end_time", "source_version", "lifecycle_stage",
             "artifact_uri", "experiment_id", "deleted_time")
_METRIC_COLS = ("key", "value", "timestamp", "run_uuid", "step", "is_nan")
_KV_COLS = ("key", "value", "run_uuid")


class _SqlWriter:
    """One DB-API connection and ONE transaction for the whole import (commit in close()).

    Measured on the full benchmark: one transaction ~12 s of inserts; a transaction per file
    ~28 s, because every later file rewrites index pages that the rollback journal must copy.
    """

    def __init__(self, uri: str, exp_name: str, exp_id: str):
        import sqlalchemy as sa
        from mlflow import MlflowClient

        check_schema_revision(uri)  # a store that ensure_experiment just created, too
        self.exp_name, self.exp_id = exp_name, int(exp_id)
        self.artifact_root = MlflowClient(tracking_uri=uri).get_experiment(exp_id).artifact_location
        self.engine = sa.create_engine(uri)
        self.raw = self.engine.raw_connection()
        self.ph = _placeholder(self.engine.dialect.paramstyle)
        cur = self.raw.cursor()
        self.copy = self.engine.dialect.name == "postgresql" and hasattr(cur, "copy")
        if self.engine.dialect.name == "sqlite":
            # A large page cache for this connection only: the indexes on random run ids
            # otherwise spill pages on every insert. Not persistent, no durability change.
            cur.execute("PRAGMA cache_size = -262144")  # 256 MiB
        cur.execute(f"SELECT run_uuid FROM runs WHERE experiment_id = {self.ph}", (self.exp_id,))
        self.existing = {row[0] for row in cur.fetchall()}
        self.raw.commit()

    def _insert(self, cur, table, cols, rows):
        if self.copy:
            # PostgreSQL: COPY streams the rows in one statement, ~10x faster than executemany
            # (measured: 30k params rows 5.3 s -> see benchmarks/import_speed.py).
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([self.ph] * len(cols))})"
        cur.executemany(sql, rows)

    def write(self, bf: BenchmarkFile) -> tuple[int, int]:
        runs, params, metrics, tags, skipped = _rows_for(bf, self.exp_name, self.exp_id,
                                                         self.artifact_root, self.existing)
        if not runs:
            return 0, skipped
        cur = self.raw.cursor()
        try:
            self._insert(cur, "runs", _RUN_COLS, runs)
            self._insert(cur, "params", _KV_COLS, params)
            self._insert(cur, "metrics", _METRIC_COLS, metrics)
            # One value per (run, key) at step 0: the latest value is the only value.
            self._insert(cur, "latest_metrics", _METRIC_COLS, metrics)
            self._insert(cur, "tags", _KV_COLS, tags)
        except BaseException:
            self.raw.rollback()
            raise
        self.existing.update(r[0] for r in runs)
        return len(runs), skipped

    def commit(self):
        self.raw.commit()

    def close(self):
        try:
            self.raw.rollback()  # no-op after commit(); undoes everything after an error
        finally:
            self.raw.close()
            self.engine.dispose()


# --------------------------------------------------------------------------- HTTP stores
def log_run_with_client(client, exp_id: str, run: BenchmarkRun) -> str:
    """Write one run through MLflow's public client (the HTTP path and the test's reference)."""
    from mlflow.entities import Metric, Param

    created = client.create_run(exp_id, start_time=run.start_time, tags=run.tags,
                                run_name=run.name)
    rid = created.info.run_id
    ts = run.end_time if run.end_time is not None else (run.start_time or 0)
    metrics = [Metric(k, v, ts, 0) for k, v in run.metrics]
    params = [Param(k, v) for k, v in run.params]
    if len(params) <= 100 and len(params) + len(metrics) <= 1000:  # log_batch limits
        client.log_batch(rid, metrics=metrics, params=params)
    else:
        for i in range(0, len(params), 100):
            client.log_batch(rid, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[i:i + 1000])
    # Terminated last: a run still RUNNING marks an interrupted import.
    if run.end_time is not None:
        client.set_terminated(rid, status=run.status, end_time=run.end_time)
    else:
        client.update_run(rid, status=run.status)
    return rid


@contextlib.contextmanager
def _no_run_urls():
    """Silence ``MlflowClient.set_terminated`` on HTTP stores for the import's duration.

    On a tracking server it prints two "View run/experiment at" lines per run and fetches each
    run once more (``GET runs/get``) just to build that URL: for the 28k-run benchmark, 56k
    lines of output and 28k extra requests. MLflow's own switch is an environment variable.
    """
    var = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    old = os.environ.get(var)
    os.environ[var] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old


def _write_http(uri: str, exp_name: str, exp_id: str, bf: BenchmarkFile,
                workers: int = 8, each: Callable[[int], None] | None = None) -> tuple[int, int]:
    with _no_run_urls():
        return _write_http_quiet(uri, exp_name, exp_id, bf, workers, each)


def _write_http_quiet(uri: str, exp_name: str, exp_id: str, bf: BenchmarkFile,
                      workers: int, each: Callable[[int], None] | None) -> tuple[int, int]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    origin_ids = {r.origin_run_id for r in bf.runs}
    existing: dict[str, str] = {}
    page = None
    while True:
        res = client.search_runs(
            [exp_id], filter_string=f"tags.`{schema.ORIGIN_FILE}` = '{bf.path.name}'",
            max_results=10_000, page_token=page)
        for r in res:
            oid = r.data.tags.get(schema.ORIGIN_RUN_ID)
            if oid not in origin_ids:
                continue
            if r.info.status == "RUNNING" or oid in existing:  # interrupted, or a duplicate
                client.delete_run(r.info.run_id)
            else:
                existing[oid] = r.info.run_id
        page = res.token
        if not page:
            break
    todo = [r for r in bf.runs if r.origin_run_id not in existing]
    present = len(bf.runs) - len(todo)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(lambda run: log_run_with_client(client, exp_id, run), todo)
        for i, _ in enumerate(jobs, 1):
            if each:
                each(present + i)
    return len(todo), present
