"""``medxfer study STUDY.yaml``: a paper's evaluation protocol on Ray Tune, its table in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from medxfer.cli.common import TrackingUriOption

if TYPE_CHECKING:
    from medxfer.tune.study_config import Study


def run_and_report(config: "Path | Study", *, name: str | None = None,
                   tracking_uri: str | None = None,
                   address: str | None = None, resume: bool = False,
                   num_cpus: int | None = None, verbose: int = 1,
                   echo: Callable[[str], None] = print):
    """Run the study (a YAML path or a validated :class:`~medxfer.tune.study_config.Study`;
    :func:`medxfer.tune.study.run_study`), then write its table (and, after
    a search, ``study_search.json``: each cell's chosen configuration) to the parent run
    (:func:`medxfer.reports.study.record_summary`) and finish it. Returns
    ``(StudyResult, StudySummary)``.

    A ``synthesize:`` section's data is written first when its folder is absent (after the
    rows and protocol are validated, so a bad YAML writes nothing); the YAML's paths and the
    tracking store are checked then
    (:func:`medxfer.tune.preflight.check_study_paths`, no heavy import), then the protocol
    against the data (:func:`medxfer.tune.study_preflight.preflight`), both before Ray starts or
    anything is written."""
    from medxfer.config import read_yaml
    from medxfer.tune.preflight import check_study_paths
    from medxfer.tune.study_config import Study, ensure_declared_data, load_study, \
        study_from_dict

    given = config if isinstance(config, Study) else None
    raw = given.raw if given else read_yaml(config)
    source = given.source if given else str(config)
    study = given
    if study is None and isinstance(raw, dict) and raw.get("synthesize") is not None:
        # A bad YAML writes nothing: its rows and protocol are checked before its declared
        # data is written (only the data paths must wait for that data).
        study = study_from_dict(raw, source=source, path=Path(config))
    ensure_declared_data(raw, source)  # a synthesize: section's data, before paths are checked
    check_study_paths(raw, source=source, cli_tracking_uri=tracking_uri)
    from mlflow import MlflowClient

    from medxfer.reports.study import record_summary, summarize
    from medxfer.tune.study import run_study

    study = study or load_study(config)
    result = run_study(study, name=name, tracking_uri=tracking_uri, address=address,
                       resume=resume, num_cpus=num_cpus, verbose=verbose)
    client = MlflowClient(tracking_uri=result.tracking_uri)
    try:
        summary = summarize(result.records, metric=study.protocol.metric,
                            rows=[r.name for r in study.rows])
        title = (f"Study {result.name}: test {study.protocol.metric}, mean ± std over folds "
                 "and seeds")
        texts = record_summary(result.tracking_uri, result.parent_run_id, summary, title=title)
        if study.protocol.shortcut is not None:  # curves, permutation tests, Fig. 4.3
            _record_shortcut(study, result, echo)
        if result.chosen:  # each cell's configuration from its search, by cell key
            client.log_dict(result.parent_run_id, result.chosen, "study_search.json")
    except BaseException:  # the parent never stays RUNNING
        client.set_terminated(result.parent_run_id, "FAILED")
        raise
    failed = result.n_errored > 0 or not len(summary.cells)
    client.set_terminated(result.parent_run_id, "FAILED" if failed else "FINISHED")
    echo(texts["table"].rstrip("\n"))
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in result.phases.items() if v)
    parallel = ", ".join(f"{k} {v}" for k, v in result.concurrency.items())
    echo(f"study {result.name}: {len(result.records)} cells, {result.n_trials} trials "
         f"({result.n_errored} errored) in {result.seconds:.0f} s ({phases}); most trials at "
         f"once: {parallel or '-'}\nMLflow: {result.tracking_uri} experiment "
         f"{result.experiment} parent run {result.parent_run_id}\nTune: {result.storage_dir}")
    return result, summary


def _record_shortcut(study, result, echo: Callable[[str], None]) -> None:
    from medxfer.reports.study import record_shortcut

    sc = study.protocol.shortcut
    why = record_shortcut(result.tracking_uri, result.parent_run_id, result.records,
                          metric=study.protocol.metric,
                          title=f"Study {result.name}: {sc.confounder} in class "
                                f"{sc.target_class}")
    if why:
        echo(f"shortcut figure not drawn: {why}")


def study(
    config: Annotated[Path, typer.Argument(help="Study YAML: an experiment with a protocol: "
                                                "section (see search_spaces/).",
                                           show_default=False)],
    name: Annotated[Optional[str], typer.Option(
        help="Study name: MLflow experiment study/NAME and the Tune folder "
             "<protocol.storage_path>/NAME (default: the YAML's name, else its stem).",
        show_default=False)] = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster to join (ray://HOST:10001 or auto); default: a local runtime.",
        show_default=False)] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted study: finished cells are kept, the rest "
                         "run; every cell keeps its one MLflow run.")] = False,
    tracking_uri: TrackingUriOption = None,
    num_cpus: Annotated[Optional[int], typer.Option(
        help="CPUs of the local runtime (default: all).", show_default=False)] = None,
) -> None:
    """Run a study: methods x protocol cells (folds, label fractions, test sets, few-shot
    fractions) x seeds as Ray Tune trials, each cell an MLflow child run of the study's run in
    experiment study/NAME, which gets mean ± std per cell and the paper-shaped table
    (study_table.csv/md/tex/txt). A protocol the data cannot satisfy exits 2 before Ray starts.
    A synthesize: section (the *_smoke.yaml studies) writes the study's synthetic data first
    when its folder is absent.

    Example: medxfer study search_spaces/study_example.yaml --tracking-uri sqlite:///mlruns.db
    """
    result, summary = run_and_report(config, name=name, tracking_uri=tracking_uri,
                                     address=address, resume=resume, num_cpus=num_cpus,
                                     echo=typer.echo)
    if result.n_errored and not len(summary.cells):
        raise typer.Exit(1)
