"""``medxfer demo``: the main job on the embedded default (local sqlite store, offline).

Until the end-to-end demo of synthetic sweeps and estimates lands (issue 6), the demo imports the
published transfer benchmark into the store and prints both ground-truth tables from MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli_common import TrackingUriOption

BENCHMARK_SUBDIR = Path("benchmark") / "medmnist-transfer"


def find_benchmark_dir() -> Path | None:
    """``$MEDXFER_BENCHMARK_DIR``, else ``shared/benchmark/medmnist-transfer`` beside the checkout
    or beside the working directory."""
    env = os.environ.get("MEDXFER_BENCHMARK_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent, Path.cwd().parent, Path.cwd()):
        cand = base / "shared" / BENCHMARK_SUBDIR
        if cand.is_dir():
            return cand
    return None


def demo(
    benchmark_dir: Annotated[Optional[Path], typer.Option(
        help="Folder of the published benchmark's fined_*.csv files.")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Run the main job on the embedded default: import the transfer benchmark into the local
    MLflow store and print both ground-truth tables from MLflow.

    Example: medxfer demo --tracking-uri sqlite:///mlruns.db
    """
    from medxfer.reports.tables import render
    from medxfer.tracking.benchmark_import import import_benchmark
    from medxfer.tracking.query import ground_truth
    from medxfer.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    directory = benchmark_dir or find_benchmark_dir()
    if directory is None or not directory.is_dir():
        typer.echo("The published transfer benchmark was not found. Pass its folder (the "
                   f"fined_*.csv files, normally ../shared/{BENCHMARK_SUBDIR}) with\n"
                   f"  medxfer benchmark import ../shared/{BENCHMARK_SUBDIR}\n"
                   "or set MEDXFER_BENCHMARK_DIR and run `medxfer demo` again.")
        raise typer.Exit(2)
    res = import_benchmark(directory, tracking_uri=uri)
    typer.echo(f"{res.experiment_name}: {res.written} runs written, {res.skipped} already "
               f"present ({res.seconds:.1f} s)")
    name = res.experiment_name.split("/", 1)[1]
    for kind, title in (("dataset", "Ground truth, dataset transferability (test AUC x 100; "
                                    "rows: sources, columns: targets)"),
                        ("architecture", "Ground truth, architecture transferability "
                                         "(test AUC x 100)")):
        table = ground_truth(uri, name, benchmark=kind) * 100
        typer.echo(f"\n{title}\n" + render(table, "table", digits=2))
    typer.echo(f"MLflow store: {uri}\nBrowse it: medxfer ui --tracking-uri {uri}")
