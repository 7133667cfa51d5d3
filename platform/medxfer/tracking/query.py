"""The one query module: every consumer reads medxfer runs from MLflow through here.

Ground truth is a query, never a copy (DESIGN.md): per (source, target) — or (arch, target) for
the architecture benchmark — the ``metric`` of the run with the best ``select_by``. The same
function answers for imported benchmarks (``benchmark/<name>``) and for our own sweeps
(``sweep/<name>``), because both carry the run schema's tags.

On SQL stores one SQL query reads exactly the needed tags and latest metrics (~0.3 s for the
28,205-run benchmark); HTTP stores go through ``MlflowClient.search_runs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tracking.uri import is_sql_uri, resolve_tracking_uri

MODES = ("min", "max")
_CAND_COLS = ["run_id", "row_flag", "target", "sel", "met", "bench"]


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


_ENGINES: dict = {}


def _engine(uri: str):
    """One SQLAlchemy engine per SQL store URI for this process (MLflow itself is not imported:
    the SQL read path needs only the tables)."""
    import sqlalchemy as sa

    if uri not in _ENGINES:
        _ENGINES[uri] = sa.create_engine(uri)
    return _ENGINES[uri]


def _experiments(uri: str, kind: str) -> dict[str, str]:
    """``{full name: experiment id}`` of the active ``kind/*`` experiments."""
    prefix = f"{kind}/"
    if is_sql_uri(uri):
        import sqlalchemy as sa

        from medxfer.tracking.uri import sqlite_path

        db = sqlite_path(uri)
        if db is not None and not db.exists():
            return {}
        with _engine(uri).connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT name, experiment_id FROM experiments "
                "WHERE lifecycle_stage = 'active' AND name LIKE :p"), {"p": prefix + "%"}).all()
        return {n: str(i) for n, i in rows if n.startswith(prefix)}
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    return {e.name: e.experiment_id for e in c.search_experiments(
        filter_string=f"name LIKE '{prefix}%'", max_results=50_000)}


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
                raise MedxferInputError(f"experiment {name!r}: expected '<name>' or one of "
                                        f"{', '.join(p + '/<name>' for p in schema.EXPERIMENT_PREFIXES)}",
                                        field="name")
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


# A run belongs to the dataset table if tagged dataset (or untagged: sweeps that feed no named
# benchmark); to the architecture table if tagged architecture, or if it is a dataset-benchmark
# run from ImageNet (that is ResNet18/ImageNet: the architecture table's `resnet` row).
_BENCH_CONDITION = """(COALESCE(tb.value, 'dataset') = :bench
               OR (:bench = 'architecture' AND COALESCE(tb.value, 'dataset') = 'dataset'
                   AND tsrc.value = 'imagenet'))"""


def _candidate_runs_sql(uri: str, exp_ids: list[str], sel: Selection) -> pd.DataFrame:
    import sqlalchemy as sa

    row_tag = schema.row_key(sel.benchmark)
    query = sa.text(f"""
        SELECT r.run_uuid AS run_id, trow.value AS row_flag, ttgt.value AS target,
               msel.value AS sel, mmet.value AS met, COALESCE(tb.value, 'dataset') AS bench
        FROM runs r
        JOIN tags trow ON trow.run_uuid = r.run_uuid AND trow.key = :row_tag
        JOIN tags ttgt ON ttgt.run_uuid = r.run_uuid AND ttgt.key = :target_tag
        JOIN latest_metrics msel ON msel.run_uuid = r.run_uuid AND msel.key = :select_by
        JOIN latest_metrics mmet ON mmet.run_uuid = r.run_uuid AND mmet.key = :metric
        LEFT JOIN tags tb ON tb.run_uuid = r.run_uuid AND tb.key = :bench_tag
        LEFT JOIN tags tsrc ON tsrc.run_uuid = r.run_uuid AND tsrc.key = :source_tag
        LEFT JOIN tags tkind ON tkind.run_uuid = r.run_uuid AND tkind.key = :kind_tag
        WHERE r.experiment_id IN :exp_ids AND r.lifecycle_stage = 'active'
          AND msel.is_nan = :false AND mmet.is_nan = :false
          AND COALESCE(tkind.value, '') <> :kind_sweep
          AND {_BENCH_CONDITION}
    """).bindparams(sa.bindparam("exp_ids", expanding=True))
    with _engine(uri).connect() as conn:
        rows = conn.execute(query, {
            "row_tag": row_tag, "target_tag": schema.TARGET, "select_by": sel.select_by,
            "metric": sel.metric, "bench_tag": schema.BENCHMARK, "source_tag": schema.SOURCE,
            "kind_tag": schema.KIND, "kind_sweep": schema.KIND_SWEEP,
            "exp_ids": [int(i) for i in exp_ids], "bench": sel.benchmark, "false": False,
        }).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=_CAND_COLS)


def _candidate_runs_client(uri: str, exp_ids: list[str], sel: Selection) -> pd.DataFrame:
    import mlflow

    df = mlflow.search_runs(exp_ids, output_format="pandas", max_results=1_000_000)
    if df.empty:
        return pd.DataFrame(columns=_CAND_COLS)

    def col(name):
        return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)

    bench = col(f"tags.{schema.BENCHMARK}").fillna(schema.BENCHMARK_DATASET)
    source = col(f"tags.{schema.SOURCE}")
    kind = col(f"tags.{schema.KIND}").fillna("")
    keep = bench.eq(sel.benchmark)
    if sel.benchmark == schema.BENCHMARK_ARCHITECTURE:
        keep |= bench.eq(schema.BENCHMARK_DATASET) & source.eq("imagenet")
    keep &= kind.ne(schema.KIND_SWEEP)
    out = pd.DataFrame({
        "run_id": df["run_id"], "row_flag": col(f"tags.{schema.row_key(sel.benchmark)}"),
        "target": col(f"tags.{schema.TARGET}"), "sel": col(f"metrics.{sel.select_by}"),
        "met": col(f"metrics.{sel.metric}"), "bench": bench,
    })[keep]
    return out.dropna(subset=["row_flag", "target", "sel", "met"])


def _architecture_targets_only(cand: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """The architecture table's targets are those of the architecture benchmark; the dataset
    benchmark only lends its ImageNet/ResNet18 runs for them."""
    if benchmark == schema.BENCHMARK_ARCHITECTURE and cand["bench"].eq(benchmark).any():
        targets = set(cand.loc[cand["bench"].eq(benchmark), "target"])
        cand = cand[cand["target"].isin(targets)]
    return cand


def selected_runs(tracking_uri: str | None = None, name: str | None = None, *,
                  benchmark: str = schema.BENCHMARK_DATASET, metric: str = "test_auc",
                  select_by: str = "val_loss", mode: str = "min",
                  kind: str = "benchmark") -> pd.DataFrame:
    """Long form of the ground truth: one row per (row flag, target) with the selected run.

    Columns: ``row`` (source or arch flag), ``target``, ``run_id``, ``select_by`` value,
    ``value`` (the metric of the selected run), ``n_runs`` (runs of that pair).
    Ties at the best ``select_by`` are broken by run id, so the answer is deterministic.
    """
    sel = Selection(benchmark, metric, select_by, mode)
    uri = resolve_tracking_uri(tracking_uri)
    experiment = resolve_experiment(uri, name, kind)
    exp_ids = _experiment_ids(uri, experiment)
    cand = (_candidate_runs_sql if is_sql_uri(uri) else _candidate_runs_client)(uri, exp_ids, sel)
    cols = ["row", "target", "run_id", "select_by", "value", "n_runs"]
    cand = _architecture_targets_only(cand, sel.benchmark)
    if cand.empty:
        return pd.DataFrame(columns=cols)
    cand = cand.sort_values(["row_flag", "target", "sel", "run_id"],
                            ascending=[True, True, mode == "min", True])
    n = cand.groupby(["row_flag", "target"]).size().rename("n_runs")
    best = cand.drop_duplicates(["row_flag", "target"], keep="first").set_index(
        ["row_flag", "target"]).join(n).reset_index()
    best = best.rename(columns={"row_flag": "row", "sel": "select_by", "met": "value"})
    return best[cols].reset_index(drop=True)


def ground_truth(tracking_uri: str | None = None, name: str | None = None, *,
                 benchmark: str = schema.BENCHMARK_DATASET, metric: str = "test_auc",
                 select_by: str = "val_loss", mode: str = "min",
                 kind: str = "benchmark") -> pd.DataFrame:
    """Ground-truth table: rows = sources (or archs), columns = targets, values = ``metric``.

    A pair with no run is NaN. Rows and columns are sorted by flag name.
    """
    long = selected_runs(tracking_uri, name, benchmark=benchmark, metric=metric,
                         select_by=select_by, mode=mode, kind=kind)
    table = long.pivot(index="row", columns="target", values="value")
    table = table.sort_index().sort_index(axis=1)
    table.index.name = "source"  # CSV layout: first column `source` (archs too)
    table.columns.name = None
    return table.astype(float)


# --- the logged grid: one row per run with its params and metrics (benchmark replay) ---------

def _grid_runs_sql(uri: str, exp_id: str, benchmark: str, params: tuple[str, ...],
                   metrics: tuple[str, ...]) -> pd.DataFrame:
    import sqlalchemy as sa

    binds = {
        "row_tag": schema.row_key(benchmark), "target_tag": schema.TARGET,
        "bench_tag": schema.BENCHMARK, "source_tag": schema.SOURCE, "kind_tag": schema.KIND,
        "kind_sweep": schema.KIND_SWEEP, "exp_id": int(exp_id), "bench": benchmark,
    }
    cols, joins = [], []
    for i, p in enumerate(params):
        binds[f"p{i}"] = p
        cols.append(f"tp{i}.value")
        joins.append(f"LEFT JOIN params tp{i} ON tp{i}.run_uuid = r.run_uuid AND tp{i}.key = :p{i}")
    for i, m in enumerate(metrics):
        binds[f"m{i}"] = m
        cols.append(f"CASE WHEN tm{i}.is_nan THEN NULL ELSE tm{i}.value END")
        joins.append(f"LEFT JOIN latest_metrics tm{i} ON tm{i}.run_uuid = r.run_uuid "
                     f"AND tm{i}.key = :m{i}")
    query = sa.text(f"""
        SELECT r.run_uuid, trow.value, ttgt.value, COALESCE(tb.value, 'dataset'), {", ".join(cols)}
        FROM runs r
        JOIN tags trow ON trow.run_uuid = r.run_uuid AND trow.key = :row_tag
        JOIN tags ttgt ON ttgt.run_uuid = r.run_uuid AND ttgt.key = :target_tag
        LEFT JOIN tags tb ON tb.run_uuid = r.run_uuid AND tb.key = :bench_tag
        LEFT JOIN tags tsrc ON tsrc.run_uuid = r.run_uuid AND tsrc.key = :source_tag
        LEFT JOIN tags tkind ON tkind.run_uuid = r.run_uuid AND tkind.key = :kind_tag
        {" ".join(joins)}
        WHERE r.experiment_id = :exp_id AND r.lifecycle_stage = 'active'
          AND COALESCE(tkind.value, '') <> :kind_sweep
          AND {_BENCH_CONDITION}
    """)
    with _engine(uri).connect() as conn:
        rows = conn.execute(query, binds).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["run_id", "row_flag", "target", "bench", *params,
                                       *metrics])


def _grid_runs_client(uri: str, exp_id: str, benchmark: str, params: tuple[str, ...],
                      metrics: tuple[str, ...]) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs([exp_id], output_format="pandas", max_results=1_000_000)
    columns = ["run_id", "row_flag", "target", "bench", *params, *metrics]
    if df.empty:
        return pd.DataFrame(columns=columns)

    def col(name):
        return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)

    bench = col(f"tags.{schema.BENCHMARK}").fillna(schema.BENCHMARK_DATASET)
    keep = bench.eq(benchmark)
    if benchmark == schema.BENCHMARK_ARCHITECTURE:
        keep |= bench.eq(schema.BENCHMARK_DATASET) & col(f"tags.{schema.SOURCE}").eq("imagenet")
    keep &= col(f"tags.{schema.KIND}").fillna("").ne(schema.KIND_SWEEP)
    out = pd.DataFrame({"run_id": df["run_id"], "row_flag": col(f"tags.{schema.row_key(benchmark)}"),
                        "target": col(f"tags.{schema.TARGET}"), "bench": bench,
                        **{p: col(f"params.{p}") for p in params},
                        **{m: col(f"metrics.{m}") for m in metrics}})[keep]
    return out.dropna(subset=["row_flag", "target"])[columns]


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
    params, metrics = tuple(params), tuple(metrics)
    uri = resolve_tracking_uri(tracking_uri)
    experiment = resolve_experiment(uri, name, kind)
    exp_id = _experiment_id(uri, experiment)
    reader = _grid_runs_sql if is_sql_uri(uri) else _grid_runs_client
    runs = _architecture_targets_only(reader(uri, exp_id, benchmark, params, metrics), benchmark)
    for m in metrics:
        runs[m] = pd.to_numeric(runs[m], errors="coerce").astype(float)
    runs = runs.rename(columns={"row_flag": "row"}).drop(columns="bench")
    return runs.sort_values(["row", "target", "run_id"]).reset_index(drop=True)


# --- sweep trials -------------------------------------------------------------------------------

TRIAL_COLS = ["sweep", "run_id", "start_time", "source", "target", "arch", "key", "step", "value"]


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
        parent run is not one. NaN values are left out; sorted by sweep, start, run, key, step.
    """
    uri = resolve_tracking_uri(tracking_uri)
    experiments = _experiments(uri, "sweep")
    if names:
        wanted = [resolve_experiment(uri, n, "sweep") for n in names]
        missing = [n for n in wanted if n not in experiments]
        if missing:
            raise MedxferInputError(f"sweep experiment(s) {', '.join(missing)} not found in {uri}",
                                    field="sweep")
        experiments = {n: experiments[n] for n in wanted}
    if not experiments or not metrics:
        return pd.DataFrame(columns=TRIAL_COLS)
    read = _sweep_trials_sql if is_sql_uri(uri) else _sweep_trials_client
    df = read(uri, experiments, list(metrics))
    if df.empty:
        return pd.DataFrame(columns=TRIAL_COLS)
    df["sweep"] = df["sweep"].str.split("/", n=1).str[1]
    df = df.sort_values(["sweep", "start_time", "run_id", "key", "step"])
    return df[TRIAL_COLS].reset_index(drop=True)


def _sweep_trials_sql(uri: str, experiments: dict[str, str], metrics: list[str]) -> pd.DataFrame:
    import sqlalchemy as sa

    query = sa.text("""
        SELECT e.name AS sweep, r.run_uuid AS run_id, r.start_time AS start_time,
               tsrc.value AS source, ttgt.value AS target, tarch.value AS arch,
               m.key AS key, m.step AS step, m.value AS value, m.timestamp AS ts
        FROM runs r
        JOIN experiments e ON e.experiment_id = r.experiment_id
        JOIN tags tkind ON tkind.run_uuid = r.run_uuid AND tkind.key = :kind_tag
                       AND tkind.value = :kind_trial
        JOIN metrics m ON m.run_uuid = r.run_uuid AND m.key IN :metrics
        LEFT JOIN tags tsrc ON tsrc.run_uuid = r.run_uuid AND tsrc.key = :source_tag
        LEFT JOIN tags ttgt ON ttgt.run_uuid = r.run_uuid AND ttgt.key = :target_tag
        LEFT JOIN tags tarch ON tarch.run_uuid = r.run_uuid AND tarch.key = :arch_tag
        WHERE r.experiment_id IN :exp_ids AND r.lifecycle_stage = 'active'
          AND m.is_nan = :false
    """).bindparams(sa.bindparam("metrics", expanding=True),
                    sa.bindparam("exp_ids", expanding=True))
    with _engine(uri).connect() as conn:
        rows = conn.execute(query, {
            "kind_tag": schema.KIND, "kind_trial": schema.KIND_TRIAL, "metrics": metrics,
            "source_tag": schema.SOURCE, "target_tag": schema.TARGET, "arch_tag": schema.ARCH,
            "exp_ids": [int(i) for i in experiments.values()], "false": False,
        }).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=TRIAL_COLS + ["ts"])
    # A step logged twice: the later write wins, as in MLflow's own metric history.
    df = df.sort_values("ts").drop_duplicates(["run_id", "key", "step"], keep="last")
    return df.drop(columns="ts")


def _sweep_trials_client(uri: str, experiments: dict[str, str], metrics: list[str]) -> pd.DataFrame:
    import math

    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    ids = {v: k for k, v in experiments.items()}
    records = []
    runs = c.search_runs(list(experiments.values()),
                         filter_string=f"tags.`{schema.KIND}` = '{schema.KIND_TRIAL}'",
                         max_results=50_000)
    for run in runs:
        tags = run.data.tags
        for key in metrics:
            history = {m.step: m.value for m in sorted(
                c.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp)}
            records += [(ids[run.info.experiment_id], run.info.run_id, run.info.start_time,
                         tags.get(schema.SOURCE), tags.get(schema.TARGET), tags.get(schema.ARCH),
                         key, step, value)
                        for step, value in history.items() if not math.isnan(value)]
    return pd.DataFrame(records, columns=TRIAL_COLS)
