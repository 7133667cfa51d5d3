"""A real PostgreSQL store: bulk import, ground truth, the revision guard, an ``mlflow server``
backed by it, and a sweep logging to it.

One PostgreSQL server for this module (``medxfer.tracking.postgres.PostgresServer``: Debian's
``postgresql`` binaries on a socket directory, as the ``postgres`` user when run as root, torn
down after). The data is a subset of the published benchmark (the first rows of every export:
both tables, FAILED runs included), imported into an *empty* database (the import creates
MLflow's schema) and into a sqlite file; every answer must be the same, the CSV byte for byte.
"""

from __future__ import annotations

import csv
import os

import pandas as pd
import pytest
from benchmark_csvs import run_row, write_export

from medxfer.cli import main
from medxfer.tracking import postgres, query
from medxfer.tracking.benchmark_import import SUPPORTED_SCHEMA_REVISION, import_benchmark

pytestmark = pytest.mark.timeout(600)
ROWS_PER_FILE = 15
NAME = "subset"


@pytest.fixture(scope="module")
def pg():
    if not postgres.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (make test installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    with postgres.PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def subset(benchmark_dir, tmp_path_factory):
    """The first ``ROWS_PER_FILE`` runs of every published export."""
    d = tmp_path_factory.mktemp("subset") / NAME
    d.mkdir()
    for f in sorted(benchmark_dir.glob("fined_*.csv")):
        with open(f, newline="") as fh:
            rows = [row for _, row in zip(range(ROWS_PER_FILE + 1), csv.reader(fh),
                                              strict=False)]
        with open(d / f.name, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return d


@pytest.fixture(scope="module")
def stores(pg, subset, tmp_path_factory):
    """(PostgreSQL URI, sqlite URI, first PostgreSQL import result), the subset in both."""
    sqlite = f"sqlite:///{tmp_path_factory.mktemp('pg_sqlite') / 'store.db'}"
    first = import_benchmark(subset, tracking_uri=pg.uri)
    import_benchmark(subset, tracking_uri=sqlite)
    return pg.uri, sqlite, first


def _alembic(uri: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.connect() as c:
            return [r[0] for r in c.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def _csv(capsys, uri: str, *args: str) -> str:
    assert main(["benchmark", "ground-truth", "--name", NAME, "--format", "csv",
                 "--tracking-uri", uri, *args]) == 0
    return capsys.readouterr().out


def test_bulk_import_creates_the_schema_and_is_idempotent(stores, subset):
    pg_uri, _, first = stores
    assert first.runs_in_files == 23 * ROWS_PER_FILE == first.written
    assert _alembic(pg_uri) == [SUPPORTED_SCHEMA_REVISION]
    again = import_benchmark(subset, tracking_uri=pg_uri)
    assert (again.written, again.skipped) == (0, first.runs_in_files)


@pytest.mark.parametrize("benchmark", ["dataset", "architecture"])
def test_ground_truth_csv_is_byte_identical_to_sqlite(stores, capsys, benchmark):
    pg_uri, sqlite, _ = stores
    on_pg = _csv(capsys, pg_uri, "--benchmark", benchmark)
    assert on_pg == _csv(capsys, sqlite, "--benchmark", benchmark)
    assert len(on_pg.splitlines()) > 5  # a real table, not two empty answers
    pd.testing.assert_frame_equal(query.grid_runs(pg_uri, NAME, benchmark=benchmark),
                                  query.grid_runs(sqlite, NAME, benchmark=benchmark))


def test_revision_guard_on_postgres(pg, tmp_path, capsys):
    """A database at another MLflow revision is refused with both revisions named, and nothing
    is written (no experiment table appears)."""
    import psycopg

    uri = pg.create_database("older")
    with psycopg.connect(host=str(pg.socket_dir), dbname="older", user="postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0a8213491aaa')")
    d = tmp_path / "x"
    write_export(d / "fined_x.csv", [run_row("a", "b", val_loss=0.1, test_auc=0.5)])
    assert main(["benchmark", "import", str(d), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "0a8213491aaa" in err and SUPPORTED_SCHEMA_REVISION in err
    with psycopg.connect(host=str(pg.socket_dir), dbname="older", user="postgres") as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [r[0] for r in tables] == ["alembic_version"]


def test_mlflow_server_on_postgres(stores, tmp_path, capsys):
    """``mlflow server`` backed by the PostgreSQL store: the ground truth through it is the
    sqlite CSV; an import through it (the HTTP path) reads back as the bulk import does."""
    from medxfer.tracking.server import MlflowServer

    pg_uri, sqlite, _ = stores
    with MlflowServer(pg_uri, tmp_path / "art", log_path=tmp_path / "server.log") as server:
        assert _csv(capsys, server.uri) == _csv(capsys, sqlite)
        d = tmp_path / "http"
        write_export(d / "fined_blood.csv", [
            run_row("imagenet", "bloodmnist", val_loss=0.5, test_auc=0.91),
            run_row("imagenet", "bloodmnist", val_loss=0.3, test_auc=0.88),
            run_row("pathmnist", "bloodmnist", val_loss=None, test_auc=None, status="FAILED"),
            run_row("pathmnist", "bloodmnist", val_loss=0.7, test_auc=0.80)])
        via_server = import_benchmark(d, name="http", tracking_uri=server.uri)
        assert via_server.written == 4
        import_benchmark(d, name="http", tracking_uri=sqlite)
        for uri in (server.uri, pg_uri):
            assert (_csv(capsys, uri, "--name", "http")
                    == _csv(capsys, sqlite, "--name", "http")
                    == "source,bloodmnist\nimagenet,0.88\npathmnist,0.8\n")


def test_sweep_logs_to_postgres(stores, ray_runtime, tmp_path):
    """A real 2-trial sweep (toy trainable on the session's Ray runtime) logs to PostgreSQL:
    one parent, two FINISHED trials with every epoch, and the sweep's ground truth is its best
    trial's test AUC."""
    from mlflow import MlflowClient
    from sweep_helpers import experiment, steps, sweep_runs
    from toy_trainable import Toy

    from medxfer.tune.experiment import experiment_from_dict
    from medxfer.tune.sweep import run_sweep

    pg_uri = stores[0]
    exp = experiment_from_dict(experiment({"algorithm": "grid", "max_concurrent": 2, "space": {
        "train.lr": {"grid": [0.1, 0.01]}}}))
    res = run_sweep(exp, name="pg", tracking_uri=pg_uri, trainable=Toy(n=96), verbose=0,
                    storage_path=str(tmp_path / "ray_results"))
    assert res.n_trials == 2 and res.n_errored == 0
    parents, children = sweep_runs(pg_uri, "pg")
    assert len(parents) == 1 and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
    for c in children:
        assert steps(pg_uri, c.info.run_id, "val_loss") == [1, 2, 3]
    best = min(children, key=lambda c: (c.data.metrics["val_loss"], c.info.run_id))
    gt = query.ground_truth(pg_uri, "sweep/pg")
    assert gt.loc["scratch", "synthpneumonia"] == pytest.approx(best.data.metrics["test_auc"])
    assert MlflowClient(tracking_uri=pg_uri).get_run(parents[0].info.run_id).info.status == \
        "FINISHED"
