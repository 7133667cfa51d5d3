"""The bulk import writes MLflow's tables directly, so it refuses a store of another schema
revision before writing anything (issue 10, item 7)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from benchmark_csvs import run_row, write_export

from medxfer.cli import main
from medxfer.errors import MedxferInputError
from medxfer.tracking.benchmark_import import SUPPORTED_SCHEMA_REVISION, import_benchmark

TABLES = ("experiments", "runs", "tags", "params", "metrics", "latest_metrics")


def _counts(db):
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.fixture
def stale_store(export_dir, tmp_path):
    """A copy of a bulk-imported store whose alembic_version says another revision."""
    ref = tmp_path / "ref.db"
    import_benchmark(export_dir, name="first", tracking_uri=f"sqlite:///{ref}")
    db = tmp_path / "stale.db"
    shutil.copy(ref, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0123456789ab'")
    return db


@pytest.fixture
def second_export(tmp_path):
    return write_export(tmp_path / "second" / "fined_oct.csv",
                        [run_row("imagenet", "octmnist", val_loss=0.2, test_auc=0.9)]).parent


def test_supported_revision_is_the_installed_mlflow_head():
    """Fails when MLflow is upgraded: the direct writes must be re-checked against its schema."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert _get_latest_schema_revision() == SUPPORTED_SCHEMA_REVISION


def test_other_revision_is_refused_and_nothing_written(stale_store, second_export):
    before = _counts(stale_store)
    with pytest.raises(MedxferInputError) as err:
        import_benchmark(second_export, name="second", tracking_uri=f"sqlite:///{stale_store}")
    msg = str(err.value)
    assert "0123456789ab" in msg and SUPPORTED_SCHEMA_REVISION in msg and "3.17.2" in msg
    assert str(stale_store) in msg and "alembic_version" in msg
    assert _counts(stale_store) == before


def test_cli_exits_2_naming_both_revisions(stale_store, second_export, capsys):
    before = _counts(stale_store)
    code = main(["benchmark", "import", str(second_export), "--tracking-uri",
                 f"sqlite:///{stale_store}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "0123456789ab" in err and SUPPORTED_SCHEMA_REVISION in err
    assert _counts(stale_store) == before


def test_a_database_that_is_not_an_mlflow_store_is_refused(tmp_path, second_export):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE patients (id INTEGER)")
    with pytest.raises(MedxferInputError, match="not an MLflow store"):
        import_benchmark(second_export, name="x", tracking_uri=f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"patients"}


def test_supported_revision_imports(tmp_path, second_export):
    db = tmp_path / "fresh.db"
    res = import_benchmark(second_export, name="ok", tracking_uri=f"sqlite:///{db}")
    assert res.written == 1
    res = import_benchmark(second_export, name="ok2", tracking_uri=f"sqlite:///{db}")
    assert (res.written, _counts(db)["runs"]) == (1, 2)
