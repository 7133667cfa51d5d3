
import pytest

from medxfer.tracking.uri import absolute_uri, resolve_tracking_uri, sqlite_path


def test_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri("sqlite:///cli.db", "sqlite:///cfg.db", base=tmp_path) == \
        f"sqlite:///{tmp_path / 'cli.db'}"
    assert resolve_tracking_uri(None, "sqlite:///cfg.db", base=tmp_path) == \
        f"sqlite:///{tmp_path / 'cfg.db'}"
    assert resolve_tracking_uri(None, None, base=tmp_path) == f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_tracking_uri(base=tmp_path) == f"sqlite:///{tmp_path / 'mlruns.db'}"


def test_absolute_forms(tmp_path):
    assert absolute_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert absolute_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    assert absolute_uri("runs", base=tmp_path) == (tmp_path / "runs").as_uri()
    assert sqlite_path(absolute_uri("sqlite:///a/b.db", base=tmp_path)) == tmp_path / "a" / "b.db"
    with pytest.raises(ValueError, match="in-memory"):
        absolute_uri("sqlite:///:memory:")
