"""``medxfer sweep CONFIG.yaml``: a Ray Tune sweep with every trial in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption


def sweep(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see search_spaces/).",
                                           show_default=False)],
    name: Annotated[Optional[str], typer.Option(
        help="Sweep name: MLflow experiment sweep/NAME and the Tune folder "
             "<search.storage_path>/NAME (default: YAML name or file stem + timestamp; with "
             "--resume: the latest such sweep).", show_default=False)] = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster to join (ray://HOST:10001 or auto); default: a local runtime.",
        show_default=False)] = None,
    tracking_uri: TrackingUriOption = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted sweep: only unfinished (and errored) trials "
                         "run, each MLflow child run is reused.")] = False,
    smoke_test: Annotated[bool, typer.Option(
        "--smoke-test", help="Tiny budget: 2 trials of 1 epoch.")] = False,
    num_cpus: Annotated[Optional[int], typer.Option(
        help="CPUs of the local runtime (default: all).", show_default=False)] = None,
) -> None:
    """Run a hyperparameter sweep of CONFIG on Ray Tune; every trial is an MLflow child run of
    the sweep's parent run, and the sweep's ground-truth row is printed at the end. A sweep
    that stalls (no result and no Ray node answering for search.stall_timeout_s) is stopped
    with exit code 3 and the --resume command that continues it.

    With search.sources (a zoo YAML and transferability metrics) the source model is searched
    too: every source is scored on the target first (one Ray task each; estimate runs in
    transferability/NAME), then the joint searcher trains the chosen (source, configuration)
    pairs, each child run tagged with its source.

    \b
    Example: medxfer sweep search_spaces/demo.yaml --tracking-uri sqlite:///mlruns.db
    Example: medxfer sweep search_spaces/finetune_zoo.yaml --name zoo-demo
    """
    from medxfer.config import read_yaml
    from medxfer.tune.preflight import check_paths

    # Folders, files, backbone and tracking store first: no torch, Ray or MLflow import yet.
    if config.is_file():
        check_paths(read_yaml(config), source=str(config), cli_tracking_uri=tracking_uri,
                    sweep=not resume)

    from medxfer.tune.experiment import load_experiment, smoke_test as smoke
    from medxfer.tune.sweep import run_sweep

    exp = load_experiment(config)
    if smoke_test and not resume:
        exp = smoke(exp)
    sources = None
    if exp.search.sources is not None and not resume:
        from medxfer.transferability.zoo_sweep import zoo_sources

        sources = zoo_sources(exp, echo=lambda msg: typer.echo(msg, err=True))
    result = run_sweep(exp, name=name, tracking_uri=tracking_uri, address=address,
                       resume=resume, num_cpus=num_cpus, sources=sources)
    typer.echo(result.summary())
    if result.n_errored == result.n_trials:
        raise typer.Exit(1)
