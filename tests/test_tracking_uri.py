
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


class _Health:
    """A stand-in HTTP server answering /health with ``code`` (a real mlflow server takes
    12-23 s to start here; tests/test_tracking_server.py covers one)."""

    def __init__(self, code: int):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                self.send_response(code if self.path == "/health" else 404)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_tracking_server_must_answer_health(tmp_path):
    """200 (or 401/403: behind authentication) passes; another web server's 404 and a refused
    connection fail at once, instead of MLflow's minutes of retries and a traceback."""
    import socket

    from medxfer.errors import MedxferInputError
    from medxfer.tracking.uri import check_store, probe_server

    for code in (200, 401):
        with _Health(code) as server:
            assert probe_server(server.uri) is None
            assert check_store(server.uri, read_only=True) == server.uri
    with _Health(404) as server:
        with pytest.raises(MedxferInputError, match=f"^--tracking-uri: no MLflow tracking server "
                                                    f"answers at {server.uri} \\(HTTP 404 from "
                                                    f"{server.uri}/health, not an MLflow"):
            check_store(server.uri)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(MedxferInputError, match=f"^--tracking-uri: no MLflow tracking server "
                                                f"answers at {dead} .*Connection refused"):
        check_store(dead)
