"""Every matplotlib figure medxfer draws (PNG, Agg backend), sized to be read at 100 % zoom.

Ground-truth heatmap, best-so-far curves of sweeps, a shortcut study's AUC vs ``p_art``
(thesis, seed ``004_43f54b618356cecf.txt``, Fig. 4.3), and the two figures of an evaluation of
transferability scores (thesis sec. 6.5.2): the scores against ground truth (Fig. 6.5) and the
critical-difference diagram. Each ``*_figure``
function builds one figure and each ``*_png`` saves it to ``path``; nothing here reads MLflow.

Readable as drawn: every figure is at most ``MAX_WIDTH_IN`` wide at ``DPI``, so the report's
content column (about 1320 px in a 1400 px window) shows it at its natural size, and no text is
smaller than ``MIN_FONT_PT`` (9 pt at 100 dpi is 12.5 px on screen). Facets wrap into rows
instead of growing wider. The thesis' Fig. 6.5 is one row per target and one column per metric;
here each target is a block whose metric panels wrap after ``SCORE_COLUMNS``, and every panel
names its metric (the columns no longer line up once they wrap).

A figure that cannot be drawn has a reason: ``*_unavailable`` returns it, and the matching
``*_figure`` raises ``ValueError`` with it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from medxfer.reports.sweeps import ALL_SOURCES
from medxfer.transferability.evaluation import Evaluation

DPI = 100
MAX_WIDTH_IN = 12.8  # 1280 px: the report's content column at a 1400 px window, scrollbar out
MIN_FONT_PT = 9
SCORE_COLUMNS = 5  # metric panels per row of a target's block (5 x 2.5 in)
SWEEP_COLUMNS = 3  # target panels per row of a sweep's figure (3 x 4.2 in)
# Text sizes in pt; tick labels and cell values are the smallest, at MIN_FONT_PT.
_RC = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
       "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 11,
       "figure.labelsize": 10, "figure.dpi": DPI, "savefig.dpi": DPI}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(build, path: Path, *args, **kwargs) -> Path:
    """Build a figure with medxfer's text sizes, save it at ``DPI`` and close it."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        fig = build(*args, **kwargs)
        fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def slug(text: str) -> str:
    """A file-name-safe version of a sweep or target name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --- ground truth -------------------------------------------------------------------------

def heatmap_figure(table: pd.DataFrame, *, title: str, cbar: str = "test AUC"):
    """Rows x columns heatmap with the values written in the cells (NaN cells blank).

    Cells are 0.62 x 0.36 in; with so many columns that they get narrower than the width of
    ``0.99`` at 9 pt, the values are left out (the report's table beside it holds them).
    """
    plt = _pyplot()
    import numpy as np

    vals = table.to_numpy(float)
    n_rows, n_cols = vals.shape
    width = min(MAX_WIDTH_IN, 3.0 + 0.62 * n_cols)
    cell_w = (width - 3.0) / max(n_cols, 1)
    fig, ax = plt.subplots(figsize=(width, 2.4 + 0.36 * n_rows), layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(vals), cmap="viridis", aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in table.columns], rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(n_rows), [str(i) for i in table.index])
    finite = vals[np.isfinite(vals)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    if cell_w >= 0.45:
        for (i, j), v in np.ndenumerate(vals):
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=MIN_FONT_PT,
                        color="black" if v > mid else "white")
    ax.set_xlabel("target")
    ax.set_ylabel(str(table.index.name or "source"))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=cbar)
    return fig


def heatmap_png(table: pd.DataFrame, path: Path, *, title: str, cbar: str = "test AUC") -> Path:
    """:func:`heatmap_figure` saved as PNG."""
    return _save(heatmap_figure, path, table, title=title, cbar=cbar)


# --- sweeps -------------------------------------------------------------------------------

def best_so_far_unavailable(curves: pd.DataFrame, sweep: str) -> str | None:
    """Why ``sweep`` gets no best-so-far chart (no target has two trials), or None."""
    data = curves[curves["sweep"] == sweep]
    if data.empty:
        return f"sweep/{sweep} has no trial that logged the metric"
    per_target = data.groupby("target")["trial"].max()
    if per_target.max() >= 2:
        return None
    best = data.sort_values("best").iloc[0]
    return (f"sweep/{sweep} has one trial per target ({len(per_target)} in all; best "
            f"{best['best']:.4g}, {best['line'] or '(untagged)'} -> "
            f"{best['target'] or '(untagged)'}): a best-so-far curve needs two or more")


def best_so_far_figure(curves: pd.DataFrame, sweep: str, *, metric: str):
    """One panel per target of ``sweep`` (wrapping after ``SWEEP_COLUMNS``): running best of
    ``metric`` vs trial, a line per source (one colour per source in every panel) and the
    ``ALL_SOURCES`` line under them, one legend for the figure.

    Raises:
        ValueError: no target has two trials (:func:`best_so_far_unavailable`).
    """
    reason = best_so_far_unavailable(curves, sweep)
    if reason is not None:
        raise ValueError(reason)
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    data = curves[curves["sweep"] == sweep]
    targets = sorted(data["target"].unique())
    sources = sorted(set(data["line"]) - {ALL_SOURCES})
    colour = {s: f"C{i % 10}" for i, s in enumerate(sources)}
    ncols = min(SWEEP_COLUMNS, len(targets))
    nrows = math.ceil(len(targets) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(4.2 * ncols, 3.0 * nrows + 0.9))
    for ax, target in zip(axes.flat, targets):
        for line, g in data[data["target"] == target].groupby("line", sort=True):
            every = line == ALL_SOURCES  # drawn under the sources, so no source line hides
            ax.step(g["trial"], g["best"], where="post", marker="o", ms=3,
                    lw=3.0 if every else 1.4, alpha=0.45 if every else 1.0,
                    zorder=1 if every else 2,
                    color="black" if every else colour[line], label=line or "(untagged)")
        ax.set_title(target or "(untagged)")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"best {metric}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncols=min(len(handles), 5))
    fig.suptitle(f"sweep/{sweep}: best {metric} so far")
    return fig


def best_so_far_png(curves: pd.DataFrame, sweep: str, path: Path, *, metric: str) -> Path:
    """:func:`best_so_far_figure` saved as PNG."""
    return _save(best_so_far_figure, path, curves, sweep, metric=metric)


# --- shortcut studies ----------------------------------------------------------------------

#: Panels of the shortcut figure, top to bottom (thesis Fig. 4.3: o.o.d. top, i.i.d. bottom).
SHORTCUT_SETS = (("ood", "o.o.d. test (confounder reversed)"),
                 ("iid", "i.i.d. test (same correlation)"))


def shortcut_unavailable(curves: pd.DataFrame) -> str | None:
    """Why a shortcut study's curves (:func:`medxfer.evaluation.shortcut.shortcut_curves`)
    give no figure, or None."""
    if curves.empty:
        return "the study has no finished shortcut cell with a test AUC"
    if curves["p_art"].nunique() < 2:
        return (f"the study has one share p_art = {curves['p_art'].iloc[0]:g}: a curve needs "
                "two or more")
    return None


def shortcut_figure(curves: pd.DataFrame, *, title: str, metric: str = "AUC"):
    """Thesis (seed ``004_43f54b618356cecf.txt``) Fig. 4.3: mean ``metric`` over folds vs
    ``p_art``, a line per source with its 95 % CI as a band; o.o.d. panel above the i.i.d.
    one, one colour per source in both, one legend.

    Raises:
        ValueError: :func:`shortcut_unavailable` has a reason.
    """
    reason = shortcut_unavailable(curves)
    if reason is not None:
        raise ValueError(reason)
    plt = _pyplot()
    sources = sorted(curves["source"].unique())
    colour = {s: f"C{i % 10}" for i, s in enumerate(sources)}
    fig, axes = plt.subplots(2, 1, sharex=True, layout="constrained", figsize=(6.4, 6.4))
    for ax, (name, label) in zip(axes, SHORTCUT_SETS):
        for source in sources:
            g = curves[(curves["source"] == source) & (curves["set"] == name)]
            g = g.sort_values("p_art")
            if g.empty:
                continue
            ax.plot(g["p_art"], g["mean"], marker="o", ms=4, color=colour[source],
                    label=source)
            ax.fill_between(g["p_art"], g["lo"].clip(0, 1), g["hi"].clip(0, 1),
                            color=colour[source], alpha=0.2, lw=0)
        ax.set_title(label)
        ax.set_ylabel(f"mean {metric} (95% CI)")
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(0.5, color="grey", ls=":", lw=1)
    axes[-1].set_xlabel("p_art: share of the class with the confounder in training")
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    fig.suptitle(title)
    return fig


def shortcut_png(curves: pd.DataFrame, path: Path, *, title: str, metric: str = "AUC") -> Path:
    """:func:`shortcut_figure` saved as PNG."""
    return _save(shortcut_figure, path, curves, title=title, metric=metric)


# --- evaluation of transferability scores -------------------------------------------------

def scores_unavailable(ev: Evaluation) -> str | None:
    """Why the scores-vs-ground-truth figure of ``ev`` cannot be drawn, or None if it can."""
    if ev.taus.empty:
        return "no target has both scores and a ground truth"
    return None


def _score_panel(ax, ev: Evaluation, ground_truth: pd.DataFrame, target: str, metric: str):
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    s = ev.scores[metric][target] if target in ev.scores[metric].columns else pd.Series(dtype=float)
    both = pd.concat([ground_truth[target].rename("g"), s.rename("s")], axis=1, join="inner")
    both = both[(both.index != target) & both.notna().all(axis=1)]
    ax.scatter(both["g"], both["s"], s=14)
    if len(both) >= 2 and both["g"].nunique() > 1:
        slope, icpt = np.polyfit(both["g"], both["s"], 1)
        xs = np.linspace(both["g"].min(), both["g"].max(), 2)
        ax.plot(xs, slope * xs + icpt, color="black", lw=1)
    tau = ev.taus.loc[target, metric]
    ax.set_title(f"{metric}: tau={tau:.2f}" if not math.isnan(tau) else f"{metric}: tau undefined")
    short = FuncFormatter(lambda v, _pos: f"{v:.4g}")  # no offset text above the title
    for axis, bins in ((ax.xaxis, 3), (ax.yaxis, 4)):
        axis.set_major_locator(MaxNLocator(bins))
        axis.set_major_formatter(short)


def scores_vs_ground_truth_figure(ev: Evaluation, ground_truth: pd.DataFrame):
    """Thesis Fig. 6.5: per target, a panel per metric with the ground truth (x) against the
    metric's score (y) of each source, its least-squares line and tau in the title.

    Panels are placed at fixed inch offsets (a 2.45 x 2.25 in cell: 0.6 in for the y tick
    labels, 0.35 in for the title, 0.4 in for the x tick labels), so a grid of a hundred panels
    lays out at once and no title or label reaches into its neighbour.

    Args:
        ev: the evaluation; its ``scores`` (sources x targets per metric) and ``taus``.
        ground_truth: sources x targets test AUC; the source == target cell is left out, as in
            the tau.

    Raises:
        ValueError: nothing to draw (:func:`scores_unavailable`).
    """
    reason = scores_unavailable(ev)
    if reason is not None:
        raise ValueError(reason)
    plt = _pyplot()

    targets, metrics = list(ev.taus.index), list(ev.taus.columns)
    ncols = min(SCORE_COLUMNS, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    (cell_w, cell_h), (left, right, top, bottom) = (2.45, 2.25), (0.35, 0.1, 0.1, 0.45)
    block_h = 0.35 + cell_h * nrows  # a target's title line and its rows of panels
    width, height = left + cell_w * ncols + right, top + block_h * len(targets) + bottom
    fig = plt.figure(figsize=(width, height))
    for b, target in enumerate(targets):
        y_title = height - top - b * block_h  # inches from the bottom edge
        fig.text(0.5, (y_title - 0.05) / height, f"target {target}", ha="center", va="top",
                 fontsize=11, fontweight="bold")
        for k, metric in enumerate(metrics):
            r, c = divmod(k, ncols)
            x0 = left + c * cell_w + 0.6
            y0 = y_title - 0.35 - (r + 1) * cell_h + 0.4
            ax = fig.add_axes((x0 / width, y0 / height, (cell_w - 0.75) / width,
                               (cell_h - 0.75) / height))
            _score_panel(ax, ev, ground_truth, target, metric)
    fig.text(0.06 / width, 0.5, "transferability score", rotation=90, ha="left", va="center")
    fig.text(0.5, 0.08 / height, "ground truth (test AUC); each point a source, line: "
             "least-squares fit", ha="center", va="bottom")
    return fig


def scores_vs_ground_truth_png(ev: Evaluation, ground_truth: pd.DataFrame, path: Path) -> Path:
    """:func:`scores_vs_ground_truth_figure` saved as PNG."""
    return _save(scores_vs_ground_truth_figure, path, ev, ground_truth)


def cd_unavailable(ev: Evaluation) -> str | None:
    """Why the critical-difference diagram of ``ev`` cannot be drawn, or None if it can."""
    methods, targets = ev.ranks.shape[1], ev.ranks.shape[0]
    if methods < 2 or targets < 2:
        return (f"the diagram needs at least two ranked methods and two targets "
                f"(here {methods} and {targets})")
    return None


def critical_difference_figure(ev: Evaluation):
    """Critical-difference diagram (Demsar 2006) of the average ranks, with Nemenyi's CD.

    Raises:
        ValueError: the diagram cannot be drawn (the reason of :func:`cd_unavailable`).
    """
    reason = cd_unavailable(ev)
    if reason is not None:
        raise ValueError(reason)
    plt = _pyplot()
    import scikit_posthocs as sp

    sig = sp.posthoc_nemenyi_friedman(ev.ranks.reset_index(drop=True))
    height = 1.3 + 0.4 * ev.ranks.shape[1]
    fig, ax = plt.subplots(figsize=(9, height))
    # The method labels sit left and right of the axes: margins of 1.1 in leave them room.
    fig.subplots_adjust(left=1.1 / 9, right=1 - 1.1 / 9, top=1 - 0.75 / height, bottom=0.05)
    sp.critical_difference_diagram(ev.average_ranks, sig, ax=ax, alpha=ev.alpha,
                                   label_props={"fontsize": 10})
    fig.suptitle(f"average ranks; Nemenyi CD = {ev.cd:.3f} (alpha {ev.alpha}), "
                 f"Friedman p = {ev.friedman_p:.3g}", fontsize=10, y=1 - 0.08 / height, va="top")
    return fig


def critical_difference_png(ev: Evaluation, path: Path) -> Path:
    """:func:`critical_difference_figure` saved as PNG."""
    return _save(critical_difference_figure, path, ev)
