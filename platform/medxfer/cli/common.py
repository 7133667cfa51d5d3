"""Options shared by the verb modules (kept apart from cli.py to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer


def checked_store(tracking_uri: str | None, *, read_only: bool) -> str:
    """The resolved tracking URI, checked before the verb reads or writes anything: a scheme
    MLflow knows, a server that answers within seconds and, for a verb that only reads, a store
    that exists (:func:`medxfer.tracking.uri.check_store`; errors exit 2 naming the URI)."""
    from medxfer.tracking.uri import check_store

    return check_store(tracking_uri, read_only=read_only)


TrackingUriOption = Annotated[
    Optional[str],
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (overrides tracking.uri in YAML and $MLFLOW_TRACKING_URI; "
             "default sqlite:///mlruns.db in the working directory).",
        show_default=False,
    ),
]


@contextmanager
def server_read_status(tracking_uri: str | None, what: str) -> Iterator[None]:
    """A spinner on stderr while a verb reads ``what`` through a tracking server (the benchmark
    takes minutes there); nothing on SQL stores, whose reads take about a second, and nothing
    when stderr is not a terminal (stdout stays clean for ``--format csv`` either way)."""
    from medxfer.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if uri.split("://", 1)[0].lower() not in ("http", "https"):
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"reading {what} from {uri} ..."):
        yield
