"""``medxfer estimate ...``: score source models and evaluate the scores against ground truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption, checked_store, server_read_status
from medxfer.cli.report import FormatOption, options_named

estimate_app = typer.Typer(
    name="estimate",
    help="Transferability estimation: rank source models without fine-tuning, and evaluate "
         "the rankings against the logged ground truth.",
    no_args_is_help=True,
)


class Benchmark(str, Enum):
    dataset = "dataset"
    architecture = "architecture"


def _is_csv_path(value: str) -> bool:
    return value.lower().endswith(".csv") or Path(value).is_file()


@estimate_app.command()
def evaluate(
    scores: Annotated[str, typer.Option(
        "--scores", help="Directory of <metric>_*.csv score files, or the NAME of the MLflow "
                         "experiment transferability/NAME holding estimate runs.")],
    ground_truth: Annotated[str, typer.Option(
        "--ground-truth", help="CSV (source, then one test-AUC column per target), or the NAME "
                               "of the benchmark held in MLflow.")],
    benchmark: Annotated[Benchmark, typer.Option(
        help="Which benchmark table: rows are source datasets or architectures.")]
    = Benchmark.dataset,
    invert: Annotated[Optional[str], typer.Option(
        help="Comma-separated metrics scored as 1 - score; lp_fu means thesis eq. 6.8. "
             "Table 6.3: parc,ncti,leep,nleep,lp_fu.")] = None,
    rank: Annotated[Optional[str], typer.Option(
        help="Comma-separated methods to rank (default: the thesis' seven: "
             "logme,parc,sfda,ncti,leep,nleep,lp_fu).")] = None,
    format: FormatOption = None,
    output: Annotated[Optional[Path], typer.Option(
        help="Write the tau table here and the ranks, average ranks and tests beside it "
             "(FILE_ranks, FILE_average_ranks, FILE_tests); its extension sets the format.")]
    = None,
    figures: Annotated[Optional[Path], typer.Option(
        help="Directory for PNG figures: scores vs ground truth, critical-difference diagram.")]
    = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Evaluate transferability scores against ground truth, target by target.

    Weighted Kendall's tau (scipy.stats.weightedtau) per target and metric, leaving out
    source == target; per-target ranks (undefined tau ranks last), average ranks, the Friedman
    test and the Nemenyi critical difference (thesis Tables 6.2 / 6.3).

    \b
    Example:
      medxfer estimate evaluate --scores scores/ --ground-truth dataset_auc.csv --output tau.md
      medxfer estimate evaluate --scores arch --ground-truth medmnist-transfer \\
          --benchmark architecture --invert parc,ncti,leep,nleep,lp_fu
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports import evaluation as report
    from medxfer.reports.tables import output_format
    from medxfer.transferability import scores_io
    from medxfer.transferability.evaluation import THESIS_RANKED, parse_metric_names
    from medxfer.transferability.evaluation import evaluate as run_evaluation

    fmt = output_format(format, output)
    inverted = parse_metric_names(invert, "--invert")
    ranked = parse_metric_names(rank, "--rank") if rank else list(THESIS_RANKED)
    uri = None

    if Path(scores).is_dir():
        score_tables = scores_io.read_score_dir(scores)
    elif Path(scores).exists() or "/" in scores or scores.lower().endswith(".csv"):
        raise MedxferInputError("expected a directory of <metric>_*.csv files or an MLflow "
                                "experiment name", path=scores)
    else:
        uri = checked_store(tracking_uri, read_only=True)
        try:
            score_tables = scores_io.read_scores_mlflow(uri, scores, benchmark=benchmark.value)
        except MedxferInputError as exc:
            raise MedxferInputError(f"--scores {scores!r}: {exc}") from None

    if _is_csv_path(ground_truth):
        if not Path(ground_truth).is_file():
            raise MedxferInputError("ground-truth CSV not found", path=ground_truth)
        truth = scores_io.read_ground_truth_csv(ground_truth)
    else:
        from medxfer.tracking.query import ground_truth as query_ground_truth

        uri = uri or checked_store(tracking_uri, read_only=True)
        with options_named(name="--ground-truth"), \
                server_read_status(uri, "the ground truth"):
            truth = query_ground_truth(uri, name=ground_truth, benchmark=benchmark.value,
                                       metric="test_auc", select_by="val_loss", mode="min")
    scores_io.check_overlap(score_tables, truth, scores_from=scores, ground_truth_from=ground_truth)

    try:
        ev = run_evaluation(score_tables, truth, invert=inverted, ranked=ranked)
    except MedxferInputError:
        raise
    except ValueError as exc:  # bad --invert/--rank combinations with the scores given
        raise MedxferInputError(str(exc), path=scores) from exc

    for warning in report.few_sources(ev, truth):
        typer.secho(f"warning: {warning}", err=True, fg="yellow")
    if output is not None:
        for path in report.write_all(ev, fmt, output):
            typer.echo(f"wrote {path}", err=True)
    else:
        typer.echo(report.render_all(ev, fmt), nl=False)
    if figures is not None:
        drawn = report.write_figures(ev, truth, figures)
        for path in drawn.paths:
            typer.echo(f"wrote {path}", err=True)
        for name, reason in drawn.skipped.items():
            typer.secho(f"not drawn: {name}: {reason}", err=True, fg="yellow")


@estimate_app.command()
def score(
    zoo: Annotated[Path, typer.Argument(
        help="Zoo YAML: a list of source models (name, architecture, weights, num_classes, "
             "normalization, in_chans, input_size); see examples/zoo_synthetic.yaml.",
        show_default=False)],
    target: Annotated[Path, typer.Option(
        "--target", help="Folder of MedMNIST-layout .npz files holding the target dataset.",
        show_default=False)],
    flag: Annotated[str, typer.Option(
        "--flag", help="The target dataset's flag (its <flag>.npz in --target; the "
                       "medxfer.target tag).", show_default=False)],
    name: Annotated[str, typer.Option(
        help="Experiment transferability/NAME receiving one run per (source, target, "
             "metric).")] = "default",
    metrics: Annotated[str, typer.Option(
        help="'all' or comma-separated registry names (logme,leep,nleep,parc,sfda,ncti,gbc,"
             "lp,fu).")] = "all",
    size: Annotated[Optional[int], typer.Option(
        help="Image side of the .npz to read (28/64/128/224); default: each source's "
             "input_size, else 28.", show_default=False)] = None,
    n_per_class: Annotated[int, typer.Option(
        help="Training-fold images per class (thesis: 100); 0 = the whole train split.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Feature-extraction batch size.")] = 32,
    random_state: Annotated[Optional[int], typer.Option(
        help="Seed of the stochastic metric NLEEP; -1: unseeded, as the thesis.")] = 0,
    device: Annotated[Optional[str], typer.Option(
        help="Torch device (default: cuda if available, else cpu).", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    format: FormatOption = None,
    output: Annotated[Optional[Path], typer.Option(
        help="Write the sources x metrics table here instead of stdout.")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Score every source model of a zoo on a target, without fine-tuning, into MLflow.

    Features and source logits of the target's training fold (n per class, batch size 32, eval
    mode, grey images to RGB for 3-channel models, the zoo's normalisation) are extracted once
    per source; every metric is computed on them, FU on the model. One run per (source,
    target, metric) in transferability/NAME, tagged per DESIGN.md, value as metric 'score'
    (ncti: its raw terms 'seli', 'ncc', 'vc'; lp and fu as their own metrics; lp_fu is
    computed by 'estimate evaluate'). Re-scoring updates the same runs. Prints a sources x
    metrics table (empty cell: metric skipped).

    \b
    Example:
      medxfer estimate score examples/zoo_synthetic.yaml --target data/synth \\
          --flag synthorgan --name synth --metrics all
    """
    from medxfer.errors import MedxferInputError
    from medxfer.reports.tables import output_format, render, write_or_print

    fmt = output_format(format, output)
    # a dead server or bad scheme fails before torch is imported (score_zoo checks again)
    tracking_uri = checked_store(tracking_uri, read_only=False)
    from medxfer.transferability.scoring import labelled_table, score_zoo

    if n_per_class < 0:
        raise MedxferInputError(f"--n-per-class {n_per_class}: expected >= 0")
    if batch_size < 1:
        raise MedxferInputError(f"--batch-size {batch_size}: expected >= 1")
    with options_named(metrics="--metrics", flag="--flag", target="--target"):
        result = score_zoo(zoo, target, flag, metrics=metrics, size=size,
                           n_per_class=n_per_class or None, batch_size=batch_size,
                           tracking_uri=tracking_uri, name=name,
                           random_state=None if random_state is not None and random_state < 0
                           else random_state,
                           progress=progress, device=device,
                           echo=lambda msg: typer.echo(msg, err=True))
    typer.echo(f"{result.experiment}: {len(result.run_ids)} runs "
               f"({len(result.skipped)} skipped metric(s))", err=True)
    write_or_print(render(labelled_table(result), fmt, number=".4f"), output, typer.echo)
