"""Render an :class:`~medxfer.transferability.evaluation.Evaluation` as tables and figures.

Four tables, always in this order: ``taus`` (first column ``target``, one column per metric in
``METRIC_ORDER``, an empty cell for an undefined tau), ``ranks``, ``average_ranks`` and ``tests``
(Friedman chi-square and p, Nemenyi CD). Formats: ``table`` (rich, for a terminal), ``csv``,
``markdown``, ``latex``. Figures are PNG through matplotlib's Agg backend.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from medxfer.transferability.evaluation import Evaluation

FORMATS = ("table", "csv", "markdown", "latex")
SUFFIX = {"table": ".txt", "csv": ".csv", "markdown": ".md", "latex": ".tex"}
TITLES = {"taus": "Weighted Kendall's tau", "ranks": "Ranks (1 = best; undefined tau ranks last)",
          "average_ranks": "Average ranks", "tests": "Friedman test and Nemenyi critical difference"}
# Number formats of the non-CSV renderings (CSV keeps full precision).
NUMBER_FORMAT = {"taus": ".3f", "ranks": "g", "average_ranks": ".2f", "tests": ".4g"}


def tables(ev: Evaluation) -> dict[str, pd.DataFrame]:
    """The four output tables as plain DataFrames (no index)."""
    ranks = ev.ranks.reset_index()
    avg = ev.average_ranks.rename_axis("method").reset_index()
    tests = pd.DataFrame({"statistic": ["friedman_chi2", "friedman_p", "nemenyi_cd", "alpha",
                                        "methods", "targets"],
                          "value": pd.Series([ev.friedman_chi2, ev.friedman_p, ev.cd, ev.alpha,
                                              ev.ranks.shape[1], ev.ranks.shape[0]], dtype=object)})
    return {"taus": ev.taus.reset_index(), "ranks": ranks, "average_ranks": avg, "tests": tests}


def _cell(v, spec: str) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else format(v, spec)
    return str(v)


def render(df: pd.DataFrame, fmt: str, *, title: str | None = None, number: str = ".3f") -> str:
    """One table as text. ``csv`` keeps full precision; the others use format spec ``number``."""
    if fmt == "csv":
        return df.to_csv(index=False, na_rep="", lineterminator="\n")
    rows = [[_cell(v, number) for v in r] for r in df.itertuples(index=False)]
    if fmt == "markdown":
        head = f"**{title}**\n\n" if title else ""
        lines = ["| " + " | ".join(map(str, df.columns)) + " |",
                 "|" + "|".join("---" for _ in df.columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return head + "\n".join(lines) + "\n"
    if fmt == "latex":
        esc = lambda s: str(s).replace("_", r"\_")  # noqa: E731
        lines = [r"\begin{tabular}{l" + "r" * (len(df.columns) - 1) + "}", r"\toprule",
                 " & ".join(esc(c) for c in df.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        cap = f"% {title}\n" if title else ""
        return cap + "\n".join(lines) + "\n"
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for c in df.columns:
            t.add_column(str(c), justify="right" if pd.api.types.is_float_dtype(df[c]) else "left")
        for r in rows:
            t.add_row(*r)
        buf = io.StringIO()
        Console(file=buf, width=200, force_terminal=False, color_system=None).print(t)
        return buf.getvalue()
    raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def render_all(ev: Evaluation, fmt: str) -> str:
    """What ``medxfer estimate evaluate`` prints: the tau table only for csv, all four otherwise."""
    tabs = tables(ev)
    if fmt == "csv":
        return render(tabs["taus"], "csv")
    note = f"inverted (1 - score; lp_fu: eq. 6.8): {', '.join(ev.inverted)}\n\n" if ev.inverted else ""
    return note + "\n".join(render(df, fmt, title=TITLES[k], number=NUMBER_FORMAT[k])
                             for k, df in tabs.items())


def write_all(ev: Evaluation, fmt: str, output: Path) -> list[Path]:
    """Tau table to ``output``; the others to ``<stem>_<table><suffix>`` beside it."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix or SUFFIX[fmt]
    written = []
    for key, df in tables(ev).items():
        path = output if key == "taus" else output.with_name(f"{output.stem}_{key}{suffix}")
        text = render(df, fmt, title=None if fmt == "csv" else TITLES[key], number=NUMBER_FORMAT[key])
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_figures(ev: Evaluation, ground_truth: pd.DataFrame, directory: Path) -> list[Path]:
    """``scores_vs_ground_truth.png`` (thesis Fig. 6.5) and ``critical_difference.png``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [_scatter_grid(ev, ground_truth, directory / "scores_vs_ground_truth.png")]
    cd_path = _cd_diagram(ev, directory / "critical_difference.png")
    if cd_path is not None:
        paths.append(cd_path)
    return paths


def _scatter_grid(ev: Evaluation, ground_truth: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    targets, metrics = list(ev.taus.index), list(ev.taus.columns)
    fig, axes = plt.subplots(len(targets), len(metrics), squeeze=False,
                             figsize=(2.2 * len(metrics), 1.9 * len(targets)))
    for i, t in enumerate(targets):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            s = ev.scores[m][t] if t in ev.scores[m].columns else pd.Series(dtype=float)
            both = pd.concat([ground_truth[t].rename("g"), s.rename("s")], axis=1, join="inner")
            both = both[(both.index != t) & both.notna().all(axis=1)]
            ax.scatter(both["g"], both["s"], s=10)
            if len(both) >= 2 and both["g"].nunique() > 1:
                slope, icpt = np.polyfit(both["g"], both["s"], 1)
                xs = np.linspace(both["g"].min(), both["g"].max(), 2)
                ax.plot(xs, slope * xs + icpt, color="black", lw=1)
            tau = ev.taus.loc[t, m]
            ax.set_title(f"tau={tau:.2f}" if not math.isnan(tau) else "tau undefined", fontsize=7)
            ax.tick_params(labelsize=5)
            if i == 0:
                ax.annotate(m, (0.5, 1.35), xycoords="axes fraction", ha="center", fontsize=9)
            if j == 0:
                ax.set_ylabel(t, fontsize=8)
    fig.supxlabel("ground truth (test AUC)")
    fig.supylabel("transferability score", x=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _cd_diagram(ev: Evaluation, path: Path) -> Path | None:
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    if ev.ranks.shape[1] < 2 or ev.ranks.shape[0] < 2:
        return None
    sig = sp.posthoc_nemenyi_friedman(ev.ranks.reset_index(drop=True))
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * ev.ranks.shape[1]))
    sp.critical_difference_diagram(ev.average_ranks, sig, ax=ax, alpha=ev.alpha)
    ax.set_title(f"average ranks; Nemenyi CD = {ev.cd:.3f} (alpha {ev.alpha}), "
                 f"Friedman p = {ev.friedman_p:.3g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
