"""``medxfer report``: the static HTML dashboard of an MLflow store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli_common import TrackingUriOption


class Benchmark(str, Enum):
    dataset = "dataset"
    architecture = "architecture"


def report(
    output: Annotated[Path, typer.Option(
        "--output", help="Folder for index.html, the PNG figures and CSV tables (created).",
        show_default=False)],
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Benchmark NAME (experiment benchmark/NAME, or a full sweep/NAME) "
                       "holding the ground truth; default: the only benchmark in the store.",
        show_default=False)] = None,
    estimates: Annotated[Optional[str], typer.Option(
        "--estimates", help="Experiment transferability/NAME (or NAME) whose estimate runs are "
                            "evaluated against the ground truth.", show_default=False)] = None,
    benchmark: Annotated[Benchmark, typer.Option(
        help="Which benchmark table: rows are source datasets or architectures.")]
    = Benchmark.dataset,
    sweep: Annotated[Optional[list[str]], typer.Option(
        "--sweep", help="Sweep NAME for best-so-far curves (repeatable); default: every "
                        "sweep/* experiment.", show_default=False)] = None,
    invert: Annotated[Optional[str], typer.Option(
        help="Comma-separated metrics scored as 1 - score (lp_fu: thesis eq. 6.8).",
        show_default=False)] = None,
    select_by: Annotated[str, typer.Option(
        help="Metric that selects each pair's run (ground truth) and that the sweep curves "
             "show.")] = "val_loss",
    mode: Annotated[str, typer.Option(help="min or max of --select-by.")] = "min",
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Write a static HTML dashboard (works offline, from file://) and its figures as PNG.

    Ground-truth heatmap (sources x targets); with --estimates, the score-vs-ground-truth grid
    (thesis Fig. 6.5), the tau table with ranks, average ranks, Friedman p and CD, and the
    critical-difference diagram; best-so-far curves of the sweeps. Sections without data show
    a note. Open OUTPUT/index.html in a browser.

    \b
    Example:
      medxfer report --name medmnist-transfer --estimates synth --output report/
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports.dashboard import write_report
    from medxfer.transferability.evaluation import parse_metric_names

    if mode not in ("min", "max"):
        raise MedxferInputError(f"--mode {mode!r}: expected min or max", field="mode")
    try:
        res = write_report(output, tracking_uri=tracking_uri, name=name, estimates=estimates,
                           benchmark=benchmark.value, sweeps=sweep or None,
                           invert=tuple(parse_metric_names(invert, "--invert")),
                           select_by=select_by, mode=mode)
    except MedxferInputError:
        raise
    except ValueError as exc:  # e.g. an --invert that the scores cannot satisfy
        raise MedxferInputError(str(exc)) from None
    for path in res.figures + res.tables:
        typer.echo(f"wrote {path}", err=True)
    for section, note in res.notes.items():
        typer.echo(f"{section}: no data ({note})", err=True)
    typer.echo(f"report: {res.index.resolve()}")
