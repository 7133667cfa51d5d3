"""Present an :class:`~medxfer.transferability.evaluation.Evaluation` as tables and figures.

The tables and figures of the thesis' evaluation of transferability metrics (seed
``004_43f54b618356cecf.txt``, sec. 6.5.2: Tables 6.2 / 6.3, Fig. 6.5). Four tables, always in
this order: ``taus`` (first column ``target``, one column per metric in ``METRIC_ORDER``, an
empty cell for an undefined tau), ``ranks``, ``average_ranks`` and ``tests`` (Friedman
chi-square and p, Nemenyi CD). Text goes through :func:`medxfer.reports.tables.render`, figures
through :mod:`medxfer.reports.figures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from medxfer.reports import figures
from medxfer.reports.tables import SUFFIX, render
from medxfer.transferability.evaluation import Evaluation

TITLES = {"taus": "Weighted Kendall's tau",
          "ranks": "Ranks (1 = best; undefined tau ranks last)",
          "average_ranks": "Average ranks",
          "tests": "Friedman test and Nemenyi critical difference"}
# Number formats of the non-CSV renderings (CSV keeps full precision).
NUMBER_FORMAT = {"taus": ".3f", "ranks": "g", "average_ranks": ".2f", "tests": ".4g"}
# Below this many sources a weighted tau can only be +1, -1 or undefined.
MIN_SOURCES = 3


@dataclass
class Drawn:
    """Figures written (``paths``) and those that could not be drawn: file name -> why."""

    paths: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def tables(ev: Evaluation) -> dict[str, pd.DataFrame]:
    """The four output tables as plain DataFrames (no index), keyed as ``TITLES``."""
    avg = ev.average_ranks.rename_axis("method").reset_index()
    tests = pd.DataFrame({
        "statistic": ["friedman_chi2", "friedman_p", "nemenyi_cd", "alpha", "methods", "targets"],
        "value": pd.Series([ev.friedman_chi2, ev.friedman_p, ev.cd, ev.alpha,
                            ev.ranks.shape[1], ev.ranks.shape[0]], dtype=object)})
    return {"taus": ev.taus.reset_index(), "ranks": ev.ranks.reset_index(), "average_ranks": avg,
            "tests": tests}


def render_table(ev: Evaluation, key: str, fmt: str) -> str:
    """One of the four tables as text; titled in every format but CSV."""
    return render(tables(ev)[key], fmt, number=NUMBER_FORMAT[key], index=False,
                  title=None if fmt == "csv" else TITLES[key])


def render_all(ev: Evaluation, fmt: str) -> str:
    """What ``medxfer estimate evaluate`` prints: the tau table only for csv, all four otherwise."""
    if fmt == "csv":
        return render_table(ev, "taus", "csv")
    note = (f"inverted (1 - score; lp_fu: eq. 6.8): {', '.join(ev.inverted)}\n\n"
            if ev.inverted else "")
    return note + "\n".join(render_table(ev, key, fmt) for key in TITLES)


def write_all(ev: Evaluation, fmt: str, output: Path) -> list[Path]:
    """Tau table to ``output``; the others to ``<stem>_<table><suffix>`` beside it."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix or SUFFIX[fmt]
    written = []
    for key in TITLES:
        path = output if key == "taus" else output.with_name(f"{output.stem}_{key}{suffix}")
        path.write_text(render_table(ev, key, fmt), encoding="utf-8")
        written.append(path)
    return written


def source_counts(ev: Evaluation, ground_truth: pd.DataFrame) -> pd.DataFrame:
    """targets x metrics: how many sources each tau rests on (a score and a ground truth,
    source == target left out, as in ``target_tau``)."""
    counts = pd.DataFrame(0, index=ev.taus.index, columns=ev.taus.columns)
    for m in ev.taus.columns:
        for t in ev.taus.index:
            if t in ev.scores[m].columns and t in ground_truth.columns:
                both = pd.concat([ev.scores[m][t], ground_truth[t]], axis=1, join="inner")
                counts.loc[t, m] = int((both.notna().all(axis=1) & (both.index != t)).sum())
    return counts


def few_sources(ev: Evaluation, ground_truth: pd.DataFrame,
                minimum: int = MIN_SOURCES) -> list[str]:
    """One warning per target whose taus rest on fewer than ``minimum`` sources."""
    counts = source_counts(ev, ground_truth)
    out = []
    for target, row in counts.iterrows():
        low = row[row < minimum]
        if low.empty:
            continue
        if low.nunique() == 1 and len(low) == len(row):
            n = f"{int(low.iloc[0])} source(s)"
        else:
            n = "few sources (" + ", ".join(f"{m} {int(v)}" for m, v in low.items()) + ")"
        out.append(f"target {target}: tau rests on {n} with both a score and a ground truth; "
                   f"with fewer than {minimum} it can only be +1, -1 or undefined")
    return out


def write_figures(ev: Evaluation, ground_truth: pd.DataFrame, directory: Path) -> Drawn:
    """``scores_vs_ground_truth.png`` (thesis Fig. 6.5) and ``critical_difference.png``;
    a figure that cannot be drawn is listed in ``skipped`` with the reason."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawn = Drawn()
    for name, reason, draw in (
            ("scores_vs_ground_truth.png", figures.scores_unavailable(ev),
             lambda p: figures.scores_vs_ground_truth_png(ev, ground_truth, p)),
            ("critical_difference.png", figures.cd_unavailable(ev),
             lambda p: figures.critical_difference_png(ev, p))):
        if reason is None:
            drawn.paths.append(draw(directory / name))
        else:
            drawn.skipped[name] = reason
    return drawn
