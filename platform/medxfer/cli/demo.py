"""``medxfer demo``: the verb; the work is :func:`medxfer.demo.run_demo`."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption
from medxfer.demo import DEFAULT_SOURCES, DEFAULT_TARGETS, DemoPlan, run_demo


def demo(
    out: Annotated[Path, typer.Option(help="Output folder (data, weights, report).")]
    = Path("medxfer-demo"),
    trials: Annotated[int, typer.Option(help="HyperOpt trials per (source, target).")] = 3,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs per trial.")] = 4,
    sources: Annotated[str, typer.Option(help="Comma-separated source modalities.")]
    = ",".join(DEFAULT_SOURCES),
    targets: Annotated[str, typer.Option(help="Comma-separated target modalities.")]
    = ",".join(DEFAULT_TARGETS),
    metrics: Annotated[str, typer.Option(help="Transferability metrics: all or a,b,...")]
    = "all",
    name: Annotated[Optional[str], typer.Option(help="Demo name (default demo-<time>).")]
    = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Run the whole platform offline on data it generates: synthesise modalities, pretrain a
    backbone per source, HyperOpt fine-tuning sweeps of every source on every target (the ground
    truth, in MLflow), transferability scores of every source, their evaluation against the
    ground truth (tau table), and the HTML report.

    Example: medxfer demo --out medxfer-demo --trials 3
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports.tables import render
    from medxfer.tracking.uri import check_store

    src = tuple(s for s in sources.split(",") if s)
    tgt = tuple(s for s in targets.split(",") if s)
    if len(src) < 2 or not tgt:
        raise MedxferInputError("need at least 2 sources and 1 target", field="sources")
    if trials < 1 or epochs < 1:
        raise MedxferInputError("--trials and --epochs must be >= 1", field="trials")
    uri = check_store(tracking_uri)  # a dead server or bad scheme fails now, not mid-demo
    plan = DemoPlan(out=out.resolve(), name=name or datetime.now().strftime("demo-%Y%m%d-%H%M%S"),
                    sources=src, targets=tgt, trials=trials, epochs=epochs, metrics=metrics)
    t0 = time.perf_counter()
    res = run_demo(plan, uri, typer.echo)
    typer.echo("\nGround truth (test AUC of the min-val_loss trial; rows: sources, columns: "
               "targets)\n" + render(res.ground_truth, "table", number=".3f"))
    typer.echo("Weighted Kendall tau of each metric's scores vs the ground truth, per target\n"
               + render(res.taus, "table", number=".3f"))
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items())
    typer.echo(f"Demo {plan.name} finished in {time.perf_counter() - t0:.0f} s ({steps}).\n"
               f"MLflow store: {uri}\nReport: {res.report}\n"
               f"Browse the runs: medxfer ui --tracking-uri {uri}  (http://127.0.0.1:5000)")
