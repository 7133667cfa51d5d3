"""Tracking-URI resolution (DESIGN.md, "MLflow run schema").

Order: ``--tracking-uri`` on the verb > the YAML's ``tracking.uri`` > ``MLFLOW_TRACKING_URI`` >
``sqlite:///mlruns.db`` in the working directory. File-backed URIs are made absolute before Ray
starts, because Tune changes each trial's working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
ENV_VAR = "MLFLOW_TRACKING_URI"


def absolute_uri(uri: str, base: str | os.PathLike | None = None) -> str:
    """Return ``uri`` with any relative filesystem path made absolute against ``base`` (cwd).

    ``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db``; a bare path or ``file:`` URI becomes an
    absolute ``file://`` URI; HTTP(S) and database-server URIs are returned unchanged.
    """
    base_dir = Path(base) if base is not None else Path.cwd()
    if uri.startswith("sqlite:"):
        prefix = "sqlite:///"
        if not uri.startswith(prefix):
            raise ValueError(f"tracking URI {uri!r}: expected 'sqlite:///PATH'")
        path = uri[len(prefix):]
        if path in ("", ":memory:"):
            raise ValueError(f"tracking URI {uri!r}: an in-memory sqlite store cannot be shared")
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


def resolve_tracking_uri(cli_uri: str | None = None, config_uri: str | None = None,
                         *, base: str | os.PathLike | None = None) -> str:
    """Resolve the tracking URI by precedence and make it absolute."""
    for candidate in (cli_uri, config_uri, os.environ.get(ENV_VAR)):
        if candidate:
            return absolute_uri(candidate, base)
    return absolute_uri(DEFAULT_TRACKING_URI, base)


def is_sql_uri(uri: str) -> bool:
    """True for stores MLflow backs with SQLAlchemy (sqlite, postgresql, mysql, mssql)."""
    scheme = urlparse(uri).scheme.split("+", 1)[0]
    return scheme in ("sqlite", "postgresql", "mysql", "mssql")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None
