"""``medxfer report`` (the static HTML dashboard of an MLflow store), and what every verb that
writes a table shares: its ``--format`` option and errors that name the option the user wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption, checked_store, server_read_status
from medxfer.errors import MedxferInputError

FormatOption = Annotated[Optional[str], typer.Option(
    "--format", help="table, csv, markdown or latex (default: from --output's extension "
                     ".txt/.csv/.md/.tex, else table).", show_default=False)]


@contextmanager
def options_named(**options: str | tuple[str, object]) -> Iterator[None]:
    """Re-raise a library's ``MedxferInputError`` about ``field 'name'`` as one about the
    option the user wrote, e.g. ``options_named(name="--ground-truth")``.

    The readers below the CLI name their own parameters; only the verb knows which option fed
    each one (``estimate evaluate`` passes ``--ground-truth`` as the query's ``name``). Given
    as ``(option, value)``, a ``None`` value (the user left the option out, e.g. ``--name``
    defaulting to the only benchmark) drops the label instead of naming an unwritten option.
    """
    try:
        yield
    except MedxferInputError as exc:
        entry = options.get(exc.field or "")
        if entry is None or exc.line is not None:
            raise
        option, value = entry if isinstance(entry, tuple) else (entry, "")
        message = str(exc).split(f"field {exc.field!r}: ", 1)[-1]
        if value is not None:
            message = f"{option}: {message}"
        raise MedxferInputError(message, path=exc.path) from None


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
                            "shown and evaluated against the ground truth; default: the only "
                            "transferability experiment in the store.", show_default=False)]
    = None,
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

    Ground-truth heatmap (sources x targets); the estimate scores per target and, with a
    ground truth, the score-vs-ground-truth figure (thesis Fig. 6.5), the tau table with ranks,
    average ranks, Friedman p and CD, and the critical-difference diagram; one best-so-far chart
    per sweep; each shortcut study's AUC vs p_art and every `medxfer analyze` run's figures and
    tables. Sections without data, and figures that cannot be drawn, show a note saying
    why. Open OUTPUT/index.html in a browser.

    \b
    Example:
      medxfer report --name medmnist-transfer --estimates synth --output report/
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports.dashboard import write_report
    from medxfer.transferability.evaluation import parse_metric_names

    if mode not in ("min", "max"):
        raise MedxferInputError(f"--mode {mode!r}: expected min or max")
    inverted = tuple(parse_metric_names(invert, "--invert"))
    tracking_uri = checked_store(tracking_uri, read_only=True)
    try:
        with options_named(name=("--name", name), mode="--mode", sweep="--sweep"), \
                server_read_status(tracking_uri, "the runs"):
            res = write_report(output, tracking_uri=tracking_uri, name=name, estimates=estimates,
                               benchmark=benchmark.value, sweeps=sweep or None, invert=inverted,
                               select_by=select_by, mode=mode)
    except MedxferInputError:
        raise
    except ValueError as exc:  # e.g. an --invert that the scores cannot satisfy
        raise MedxferInputError(str(exc)) from None
    for path in res.figures + res.tables:
        typer.echo(f"wrote {path}", err=True)
    for section, note in res.notes.items():
        typer.echo(f"{section}: no data ({note})", err=True)
    for name, reason in res.not_drawn.items():
        typer.secho(f"not drawn: {name}: {reason}", err=True, fg="yellow")
    for text in res.warnings:
        typer.secho(f"warning: {text}", err=True, fg="yellow")
    typer.echo(f"report: {res.index.resolve()}")
