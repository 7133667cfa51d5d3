"""Options shared by the verb modules (kept apart from cli.py to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer

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
