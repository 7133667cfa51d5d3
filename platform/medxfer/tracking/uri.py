"""Tracking-URI resolution and the checks a driver runs on it before anything is written.

Order (DESIGN.md, "MLflow run schema"): ``--tracking-uri`` on the verb > the YAML's
``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > ``sqlite:///mlruns.db`` in the working directory.
File-backed URIs are made absolute before Ray starts, because Tune changes each trial's working
directory. A URI whose scheme MLflow has no store for is an input error naming where it was
written (MLflow itself fails with a traceback deep inside its store registry).

:func:`check_store` is the driver's check before it writes or reads: a tracking server must
answer ``/health`` within seconds (MLflow's own client retries a dead server for minutes), and a
read-only verb needs a store that exists (MLflow would create an empty one and report nothing).
No MLflow import here: these checks run before any heavy module is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from medxfer.errors import MedxferInputError

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
ENV_VAR = "MLFLOW_TRACKING_URI"
#: Schemes MLflow 3 has a tracking store for (``mlflow.tracking._tracking_service.utils``);
#: SQL schemes may carry a driver (``postgresql+psycopg``).
STORE_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https",
                 "databricks", "databricks-uc", "uc")
#: Seconds a tracking server gets to answer the reachability probe.
PROBE_TIMEOUT_S = 10.0
#: Where the resolved URI came from, as the user wrote it (for messages).
ORIGINS = ("--tracking-uri", "tracking.uri", f"${ENV_VAR}", "the default store")


def check_scheme(uri: str) -> None:
    """Raise ValueError unless MLflow has a store for ``uri``'s scheme."""
    scheme = urlparse(uri).scheme.lower()
    if scheme.split("+", 1)[0] not in STORE_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected sqlite:///PATH, a folder, "
                         "http(s)://HOST:PORT (an mlflow server) or "
                         "postgresql|mysql|mssql://USER@HOST/DB")


def absolute_uri(uri: str, base: str | os.PathLike | None = None) -> str:
    """Return ``uri`` with any relative filesystem path made absolute against ``base`` (cwd).

    ``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db``; a bare path or ``file:`` URI becomes an
    absolute ``file://`` URI; HTTP(S) and database-server URIs are returned unchanged.

    Raises:
        ValueError: a scheme MLflow has no store for, or an in-memory / malformed sqlite URI.
    """
    check_scheme(uri)
    base_dir = Path(base) if base is not None else Path.cwd()
    if uri.startswith("sqlite:"):
        prefix = "sqlite:///"
        if not uri.startswith(prefix):
            raise ValueError("expected 'sqlite:///PATH'")
        path = uri[len(prefix):]
        if path in ("", ":memory:"):
            raise ValueError("an in-memory sqlite store cannot be shared")
        p = Path(path)
        if not p.is_absolute():
            p = base_dir / p
        return prefix + str(p.resolve())
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        raw = parsed.path if parsed.scheme == "file" else uri
        p = Path(raw)
        if not p.is_absolute():
            p = base_dir / p
        return p.resolve().as_uri()
    return uri


def _chosen(cli_uri: str | None, config_uri: str | None) -> tuple[str, str]:
    """``(uri as written, origin)`` by precedence (:data:`ORIGINS`)."""
    for candidate, origin in zip((cli_uri, config_uri, os.environ.get(ENV_VAR)), ORIGINS[:3],
                                 strict=True):
        if candidate:
            return candidate, origin
    return DEFAULT_TRACKING_URI, ORIGINS[-1]


def tracking_uri_origin(cli_uri: str | None = None, config_uri: str | None = None) -> str:
    """Where the URI :func:`resolve_tracking_uri` picks comes from: ``--tracking-uri``,
    ``tracking.uri``, ``$MLFLOW_TRACKING_URI`` or ``the default store``."""
    return _chosen(cli_uri, config_uri)[1]


def resolve_tracking_uri(cli_uri: str | None = None, config_uri: str | None = None,
                         *, base: str | os.PathLike | None = None) -> str:
    """Resolve the tracking URI by precedence and make it absolute.

    Raises:
        MedxferInputError: a URI MLflow has no store for; the message names where it was
            written (``--tracking-uri``, ``tracking.uri`` or ``$MLFLOW_TRACKING_URI``).
    """
    uri, origin = _chosen(cli_uri, config_uri)
    try:
        return absolute_uri(uri, base)
    except ValueError as exc:
        raise MedxferInputError(f"{origin}: {uri!r}: {exc}") from None


def is_sql_uri(uri: str) -> bool:
    """True for stores MLflow backs with SQLAlchemy (sqlite, postgresql, mysql, mssql)."""
    scheme = urlparse(uri).scheme.split("+", 1)[0]
    return scheme in ("sqlite", "postgresql", "mysql", "mssql")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def store_exists(uri: str) -> bool:
    """False when a file-backed store (sqlite file, ``file:`` folder) is not there; True for
    server and database URIs, whose existence only their server can tell."""
    db = sqlite_path(uri)
    if db is not None:
        return db.is_file()
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path).is_dir()
    return True


def probe_server(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why no MLflow tracking server answers at ``uri``, or None when one does.

    An MLflow server answers ``GET /health`` with 200; 401/403 mean one behind authentication.
    Anything else is not a tracking server (e.g. another web server, or a network box that
    answers every address with 404), and no answer at all means it is down or unreachable.
    """
    import socket
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return None
        return f"HTTP {exc.code} from {url}, not an MLflow tracking server"
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"


def check_store(cli_uri: str | None = None, config_uri: str | None = None, *,
                read_only: bool = False, base: str | os.PathLike | None = None,
                timeout: float = PROBE_TIMEOUT_S) -> str:
    """Resolve the tracking URI and check it before anything is written; return it.

    Args:
        cli_uri, config_uri: as for :func:`resolve_tracking_uri`.
        read_only: the verb only reads: a file-backed store that does not exist is an error
            (instead of an empty store created and an empty answer).
        base: relative paths resolve against it (default: the working directory).
        timeout: seconds a tracking server gets to answer.

    Raises:
        MedxferInputError: bad scheme, unreachable server, or (``read_only``) no store; the
            message names the URI and where it was written.
    """
    uri = resolve_tracking_uri(cli_uri, config_uri, base=base)
    origin = tracking_uri_origin(cli_uri, config_uri)
    if urlparse(uri).scheme in ("http", "https"):
        why = probe_server(uri, timeout)
        if why is not None:
            raise MedxferInputError(f"{origin}: no MLflow tracking server answers at {uri} "
                                    f"({why}); expected a running `mlflow server` there")
    if read_only and not store_exists(uri):
        where = sqlite_path(uri) or urlparse(uri).path
        hint = ("pass --tracking-uri or set $MLFLOW_TRACKING_URI"
                if origin == ORIGINS[-1] else "check the path")
        raise MedxferInputError(f"{origin}: no MLflow store at {where} ({uri}); expected an "
                                f"existing store written by `medxfer benchmark import`, "
                                f"`sweep`, `train` or `estimate score` ({hint})")
    return uri
