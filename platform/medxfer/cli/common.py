"""Options shared by the verb modules (kept apart from cli.py to avoid import cycles)."""

from __future__ import annotations

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
