"""``medxfer benchmark ...`` and ``medxfer ui``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption, checked_store, server_read_status
from medxfer.cli.report import FormatOption, options_named

benchmark_app = typer.Typer(
    help="The transfer benchmark held in MLflow: import published run logs, query ground truth.",
    no_args_is_help=True,
)

BenchmarkOption = Annotated[
    str, typer.Option("--benchmark", help="Which table: dataset (sources) or architecture.")]
NameOption = Annotated[
    Optional[str],
    typer.Option("--name", help="Benchmark name (experiment benchmark/NAME); default: the only "
                                "benchmark in the store, or the directory name on import.")]


@benchmark_app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(help="Folder of fined_*.csv MLflow CSV exports.")],
    name: NameOption = None,
    timezone: Annotated[str, typer.Option(help="Time zone of the export's 'Start Time'.")]
    = "Europe/Berlin",
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Record every row of every fined_*.csv as one MLflow run in experiment benchmark/NAME.

    Idempotent (a re-run writes only what is missing) and atomic on SQL stores.

    Example: medxfer benchmark import ../shared/benchmark/medmnist-transfer --name medmnist-transfer
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from medxfer.tracking.benchmark_import import import_benchmark

    uri = checked_store(tracking_uri, read_only=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as bar:
        task = bar.add_task("importing", total=None)

        def progress(fname, done, total):
            bar.update(task, total=total, completed=done, description=f"importing {fname}")

        res = import_benchmark(directory, name=name, tracking_uri=uri, timezone=timezone,
                               progress=progress)
    typer.echo(f"{res.experiment_name}: {res.runs_in_files} runs in {res.files} files; "
               f"{res.written} written, {res.skipped} already present; {res.seconds:.1f} s "
               f"(store {uri})")


@benchmark_app.command("ground-truth")
def ground_truth_cmd(
    name: NameOption = None,
    benchmark: BenchmarkOption = "dataset",
    metric: Annotated[str, typer.Option(help="Metric reported for each pair.")] = "test_auc",
    select_by: Annotated[str, typer.Option(help="Metric that selects the run of a pair.")]
    = "val_loss",
    mode: Annotated[str, typer.Option(help="min or max of --select-by.")] = "min",
    fmt: FormatOption = None,
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of stdout.")] = None,
    percent: Annotated[bool, typer.Option(help="Show values x100 (as the paper's tables).")]
    = False,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Ground truth: per (source, target) — or (arch, target) — the --metric of the run with the
    best --select-by, read from MLflow only. Rows are sources, columns targets.

    Example: medxfer benchmark ground-truth --benchmark architecture --output gt.md --percent
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports.tables import output_format, render, render_csv_rows, write_or_print
    from medxfer.tracking.query import ground_truth_table

    fmt = output_format(fmt, output)
    _check_benchmark(benchmark)
    tracking_uri = checked_store(tracking_uri, read_only=True)
    try:
        with options_named(name=("--name", name), mode="--mode"), \
                server_read_status(tracking_uri, "the runs"):
            table = ground_truth_table(tracking_uri, name, benchmark=benchmark, metric=metric,
                                       select_by=select_by, mode=mode)
    except ValueError as exc:
        if isinstance(exc, MedxferInputError):
            raise
        raise MedxferInputError(str(exc)) from None
    if table.empty:
        raise _no_ground_truth(tracking_uri, name, benchmark, metric, select_by, mode)
    if percent:
        table = table.scaled(100)
    if fmt == "csv":  # no pandas: the CSV verb answers in about half a second
        text = render_csv_rows([table.index_name, *table.columns],
                               ([row, *cells] for row, cells in zip(table.index, table.cells,
                                                                          strict=True)))
    else:
        text = render(table.frame(), fmt, number=".2f" if percent else ".4f")
    write_or_print(text, output, typer.echo)


def _check_benchmark(benchmark: str) -> None:
    from medxfer.errors import MedxferInputError
    from medxfer.tracking.schema import BENCHMARK_KINDS

    if benchmark not in BENCHMARK_KINDS:
        raise MedxferInputError(f"--benchmark {benchmark!r}: expected one of "
                                f"{', '.join(BENCHMARK_KINDS)}")


def _no_ground_truth(tracking_uri, name, benchmark, metric, select_by, mode):
    """The error for an empty ground truth, naming the option that selected nothing: a
    --metric or --select-by that no run logs, else --benchmark (no run tagged for it)."""
    from medxfer.errors import MedxferInputError
    from medxfer.tracking.query import ground_truth_table, resolve_experiment

    experiment = resolve_experiment(tracking_uri, name)
    for option, value in (("--metric", metric), ("--select-by", select_by)):
        other = select_by if option == "--metric" else metric
        if not ground_truth_table(tracking_uri, name, benchmark=benchmark, metric=other,
                                  select_by=other, mode=mode).empty:
            return MedxferInputError(f"{option} {value!r}: no run of {experiment}'s {benchmark} "
                                     f"table logs this metric (e.g. {other!r} is logged)")
    return MedxferInputError(f"--benchmark {benchmark}: {experiment} has no runs for the "
                             f"{benchmark} table that log {select_by} and {metric}")


def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 5000,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Serve the MLflow UI for the configured store on 127.0.0.1 until Ctrl-C (or SIGTERM).

    The server stops with this command however it ends: signals are forwarded to it, and it
    stops by itself if this process is killed. A busy --port is refused before anything starts.

    Example: medxfer ui --port 5000 --tracking-uri sqlite:///mlruns.db
    """
    from medxfer.errors import MedxferInputError
    from medxfer.tracking.server import (MlflowServer, MlflowServerError, experiment_links,
                                         port_problem)
    from medxfer.tracking.store import default_artifact_root

    uri = checked_store(tracking_uri, read_only=True)
    typer.echo(f"MLflow UI for {uri} at http://127.0.0.1:{port} (Ctrl-C stops it)")
    if uri.split("://", 1)[0].lower() in ("http", "https"):
        raise MedxferInputError(f"--tracking-uri {uri}: that is a tracking server already; open "
                                "it in a browser (medxfer ui serves a database store)")
    problem = port_problem("127.0.0.1", port)
    if problem:
        raise MedxferInputError(f"--port {port}: {problem} on 127.0.0.1; choose another port")
    # The medxfer app: the stock UI and API, plus the run-table endpoint that lets readers
    # pointed at this server (--tracking-uri http://127.0.0.1:PORT) read in one request.
    server = MlflowServer(uri, default_artifact_root(uri), port=port, startup_timeout=300,
                          extra_args=["--app-name", "medxfer"])

    def ready() -> None:
        typer.echo(f"ready; server log {server.log_path}")
        links = experiment_links(uri, server.uri)
        if links:
            typer.echo("run tables (MLflow 3 opens an experiment in its GenAI view unless the "
                       "sidebar switch says 'Model training'):")
            for name, url in links:
                typer.echo(f"  {name}: {url}")

    try:
        code = server.serve_until_signal(on_ready=ready)
    except MlflowServerError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@benchmark_app.command("replay")
def replay_cmd(
    searcher: Annotated[Optional[list[str]], typer.Option(
        "--searcher", help="Searcher registry name, repeatable (medxfer.tune.searchers: "
                           "e.g. grid, warmstart; an unknown name lists them all).")] = None,
    name: NameOption = None,
    benchmark: BenchmarkOption = "dataset",
    budget: Annotated[int, typer.Option(help="Most trials per (pair, seed).")] = 120,
    seeds: Annotated[Optional[int], typer.Option(
        help="Seeds 0..K-1 per pair (default 1; with --joint 5).")] = None,
    joint: Annotated[bool, typer.Option(
        "--joint", help="Choose source and configuration together: procedures all, random, "
                        "ranked and joint per target, scored by regret (needs --scores).")]
    = False,
    scores: Annotated[Optional[Path], typer.Option(
        help="--joint: folder of <metric>_*.csv transferability scores (source, target...).")]
    = None,
    score_metric: Annotated[Optional[list[str]], typer.Option(
        "--score-metric", help="--joint: metric(s) of --scores to rank sources by (repeatable; "
                               "default: the thesis' ranked metrics present, combined).")]
    = None,
    budgets: Annotated[str, typer.Option(help="--joint: trainings per target.")]
    = "10,20,30,50,200",
    tolerance: Annotated[float, typer.Option(
        help="Reached when the selected configuration's test AUC is this close to the ground "
             "truth.")] = 0.005,
    per_pair: Annotated[bool, typer.Option(
        "--per-pair", help="Print trials per (searcher, pair, seed) instead of the summary.")]
    = False,
    fmt: FormatOption = None,
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of stdout.")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Replay searchers on the benchmark's logged grid: per (source, target) pair, the trials
    until the selected (lowest val_loss so far) configuration's test AUC is within --tolerance
    of the ground truth; summary = median, p90 and mean over pairs and seeds (inf: not reached
    within --budget). Searchers with a prior leave the replayed target's runs out of it.

    With --joint: per target of --scores, the regret (oracle test AUC minus the kept model's)
    of all, random, ranked and joint at each of --budgets, mean over targets and seeds, and
    the targets within --tolerance (csv: procedure,budget,mean_regret,targets_within).

    \b
    Examples: medxfer benchmark replay --searcher warmstart --searcher hyperopt \\
        --budget 120 --seeds 5
    medxfer benchmark replay --joint --scores scores/ --budgets 10,20,30,50,200 --seeds 5
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from medxfer.errors import MedxferInputError
    from medxfer.reports.tables import output_format, render, write_or_print
    from medxfer.tune.replay import replay, summarize

    fmt = output_format(fmt, output)
    _check_benchmark(benchmark)
    if not 0 <= tolerance < 1:
        raise MedxferInputError(f"--tolerance {tolerance}: expected 0 <= t < 1")
    if joint:
        tracking_uri = checked_store(tracking_uri, read_only=True)
        from medxfer.cli.replay_joint import replay_joint_cmd

        return replay_joint_cmd(tracking_uri, name, benchmark=benchmark, scores=scores,
                                metrics=score_metric, budgets=budgets,
                                seeds=5 if seeds is None else seeds, tolerance=tolerance,
                                fmt=fmt, output=output)
    if not searcher:
        raise MedxferInputError("--searcher: give a searcher name (repeatable), or --joint "
                                "--scores DIR")
    if scores is not None:
        raise MedxferInputError("--scores: only read with --joint")
    seeds = 1 if seeds is None else seeds
    tracking_uri = checked_store(tracking_uri, read_only=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as bar:
        task = bar.add_task("replaying", total=None)

        def progress(s, done, total):
            bar.update(task, total=total, completed=done, description=f"replaying {s}")

        with options_named(name=("--name", name), budget="--budget", seeds="--seeds"):
            results = replay(tracking_uri, name, searchers=searcher, benchmark=benchmark,
                             budget=budget, seeds=seeds, tolerance=tolerance,
                             progress=progress)
    table = (results.drop(columns="seconds").set_index(["searcher", "row", "target", "seed"])
             if per_pair else summarize(results))
    write_or_print(render(table, fmt, number=".1f"), output, typer.echo)
