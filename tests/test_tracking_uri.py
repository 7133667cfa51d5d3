from pathlib import Path

import pytest

from medxfer.tracking.uri import absolute_uri, resolve_tracking_uri, sqlite_path


def test_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri("sqlite:///cli.db", "sqlite:///cfg.db", base=tmp_path) == \
        f"sqlite:///{tmp_path / 'cli.db'}"
    assert resolve_tracking_uri(None, "sqlite:///cfg.db", base=tmp_path) == f"sqlite:///{tmp_path / 'cfg.db'}"
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


def test_unknown_schemes_name_where_the_uri_was_written(monkeypatch, tmp_path):
    from medxfer.errors import MedxferInputError
    from medxfer.tracking.uri import check_scheme, tracking_uri_origin

    for ok in ("sqlite:////a.db", "postgresql+psycopg://u@h/db", "http://h:5000", "file:///x",
               "/plain/folder", "databricks"):
        check_scheme(ok)
    with pytest.raises(ValueError, match="unknown scheme 'mongodb'"):
        check_scheme("mongodb://h/x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "s3://bucket")
    with pytest.raises(MedxferInputError, match=r"^\$MLFLOW_TRACKING_URI: 's3://bucket': unknown "
                                                r"scheme 's3'"):
        resolve_tracking_uri(None, None, base=tmp_path)
    with pytest.raises(MedxferInputError, match=r"^tracking.uri: 'foo://x'"):
        resolve_tracking_uri(None, "foo://x")
    with pytest.raises(MedxferInputError, match=r"^--tracking-uri: 'foo://x'"):
        resolve_tracking_uri("foo://x", "sqlite:///ok.db")
    assert tracking_uri_origin(None, None) == "$MLFLOW_TRACKING_URI"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri_origin(None, None) == "the default store"


def test_a_read_only_verb_needs_an_existing_store(tmp_path, monkeypatch):
    from medxfer.errors import MedxferInputError
    from medxfer.tracking.uri import check_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert check_store(uri) == uri  # a writer creates it later
    with pytest.raises(MedxferInputError, match=f"^--tracking-uri: no MLflow store at "
                                                f"{tmp_path / 'm.db'}"):
        check_store(uri, read_only=True)
    with pytest.raises(MedxferInputError, match=f"^the default store: no MLflow store at "
                                                f"{tmp_path / 'mlruns.db'}"):
        check_store(read_only=True, base=tmp_path)
    (tmp_path / "m.db").write_bytes(b"")
    assert check_store(uri, read_only=True) == uri
    assert not (tmp_path / "mlruns.db").exists()  # checking never creates a store


def test_a_dead_server_fails_fast_and_a_live_one_passes(tmp_path):
    """The probe needs any HTTP answer (here a 404 from a plain HTTP server), and reports a
    refused connection at once instead of MLflow's minutes of retries."""
    import http.server
    import socket
    import threading

    from medxfer.errors import MedxferInputError
    from medxfer.tracking.uri import check_store, probe_server

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        live = f"http://127.0.0.1:{server.server_address[1]}"
        assert probe_server(live) is None
        assert check_store(live, read_only=True) == live
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(MedxferInputError, match=f"^--tracking-uri: tracking server {dead} is "
                                                "not reachable .*Connection refused"):
        check_store(dead)
    assert "refused" in probe_server(dead, timeout=5)
