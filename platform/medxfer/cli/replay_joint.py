"""``medxfer benchmark replay --joint``: read the score folder, replay, print the table.

The verb itself is :func:`medxfer.cli.benchmark.replay_cmd`; this module is its ``--joint``
body (the CLI layer: it reads the transferability score files, which the tune layer below
does not import, and calls :mod:`medxfer.tune.joint_replay`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from medxfer.errors import MedxferInputError


def read_scores(directory: Path | None, metrics: list[str] | None) -> pd.DataFrame:
    """sources x targets: the chosen metrics of ``directory``, combined by mean normal score.

    Default metrics: the thesis' ranked ones present (Table 6.2: logme, parc, sfda, ncti, leep,
    nleep, lp_fu — lp_fu computed from the lp and fu files), else every metric present.
    """
    from medxfer.transferability.evaluation import THESIS_RANKED, prepare_scores
    from medxfer.transferability.scores_io import read_score_dir
    from medxfer.tune.joint_prior import combine_scores

    if directory is None:
        raise MedxferInputError("--scores: --joint needs a folder of <metric>_*.csv score files")
    if not Path(directory).is_dir():
        raise MedxferInputError("--scores: not a folder of <metric>_*.csv score files",
                                path=str(directory))
    try:
        tables = prepare_scores(read_score_dir(directory))
    except MedxferInputError:
        raise
    except ValueError as exc:
        raise MedxferInputError(str(exc), path=str(directory)) from None
    if metrics:
        missing = [m for m in metrics if m not in tables]
        if missing:
            raise MedxferInputError(f"--score-metric {', '.join(missing)}: not in the folder "
                                    f"(has {', '.join(tables)})", path=str(directory))
        chosen = metrics
    else:
        chosen = [m for m in THESIS_RANKED if m in tables] or list(tables)
    return combine_scores({m: tables[m] for m in chosen})


def parse_budgets(text: str) -> list[int]:
    try:
        budgets = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        budgets = []
    if not budgets or min(budgets) < 1:
        raise MedxferInputError(f"--budgets {text!r}: expected comma-separated integers >= 1")
    return budgets


def replay_joint_cmd(tracking_uri, name, *, benchmark: str, scores: Path | None,
                     metrics: list[str] | None, budgets: str, seeds: int, tolerance: float,
                     fmt: str, output: Path | None) -> None:
    """Replay all / random / ranked / joint and print the table (csv: one row per
    (procedure, budget))."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from medxfer.cli.report import options_named
    from medxfer.reports.tables import render, write_or_print
    from medxfer.tune.joint_replay import joint_table, replay_joint, summarize_joint

    table = read_scores(scores, metrics)
    steps = parse_budgets(budgets)
    if seeds < 1:
        raise MedxferInputError(f"--seeds {seeds}: expected >= 1")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as bar:
        task = bar.add_task("replaying", total=None)

        def progress(proc, done, total):
            bar.update(task, total=total, completed=done, description=f"replaying {proc}")

        with options_named(name=("--name", name), scores=("--scores", scores)):
            rows = replay_joint(tracking_uri, name, scores=table, benchmark=benchmark,
                                budgets=steps, seeds=seeds, progress=progress)
    summary = summarize_joint(rows, tolerance=tolerance)
    if fmt == "csv":
        text = render(summary[["procedure", "budget", "mean_regret", "targets_within"]], fmt,
                      index=False)
    else:
        text = render(joint_table(summary), fmt, title=(
            f"Mean regret (oracle test AUC - kept model's) over {summary['targets'].max()} "
            f"targets x {seeds} seeds (targets whose mean regret <= {tolerance:g})"))
    write_or_print(text, output, typer.echo)
