"""``medxfer benchmark ...``, ``medxfer ui`` and ``medxfer demo``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from medxfer.cli_common import TrackingUriOption

benchmark_app = typer.Typer(
    help="The transfer benchmark held in MLflow: import published run logs, query ground truth.",
    no_args_is_help=True,
)


def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Serve the MLflow UI for the configured store on 127.0.0.1.

    Example: medxfer ui --port 5000 --tracking-uri sqlite:///mlruns.db
    """
    import os
    import subprocess
    import sys

    from medxfer.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    typer.echo(f"MLflow UI for {uri} at http://127.0.0.1:{port} (Ctrl-C stops it)")
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    raise typer.Exit(subprocess.call(cmd, env=env))
