"""Options shared by the verb modules (kept apart from cli.py to avoid import cycles)."""

from __future__ import annotations

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
