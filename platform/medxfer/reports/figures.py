"""Every matplotlib figure medxfer draws (PNG, Agg backend).

Ground-truth heatmap, best-so-far curves of sweeps, and the two figures of an evaluation of
transferability scores (thesis, seed ``004_43f54b618356cecf.txt``, sec. 6.5.2): the grid of
scores against ground truth (Fig. 6.5) and the critical-difference diagram. Each function draws
one figure into ``path`` and returns it; nothing here reads MLflow.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from medxfer.reports.sweeps import ALL_SOURCES
from medxfer.transferability.evaluation import Evaluation


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    """A file-name-safe version of a sweep or target name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def heatmap_png(table: pd.DataFrame, path: Path, *, title: str, cbar: str = "test AUC") -> Path:
    """Sources x targets heatmap with the values written in the cells (NaN cells blank)."""
    plt = _pyplot()
    import numpy as np

    vals = table.to_numpy(float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * table.shape[1], 1.0 + 0.42 * table.shape[0]))
    im = ax.imshow(np.ma.masked_invalid(vals), cmap="viridis", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index], fontsize=8)
    finite = vals[np.isfinite(vals)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            v = vals[i, j]
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if v > mid else "white")
    ax.set_xlabel("target")
    ax.set_ylabel(str(table.index.name or "source"))
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=cbar)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def best_so_far_png(curves: pd.DataFrame, sweep: str, path: Path, *, metric: str) -> Path:
    """One panel per target of ``sweep``: running best of ``metric`` vs trial, a line per source."""
    plt = _pyplot()

    data = curves[curves["sweep"] == sweep]
    targets = sorted(data["target"].unique())
    ncols = min(3, len(targets))
    nrows = math.ceil(len(targets) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(4.2 * ncols, 3.0 * nrows))
    for ax, target in zip(axes.flat, targets):
        for line, g in data[data["target"] == target].groupby("line", sort=True):
            bold = line == ALL_SOURCES
            ax.step(g["trial"], g["best"], where="post", label=line or "(untagged)",
                    lw=2.2 if bold else 1.2, color="black" if bold else None)
        ax.set_title(f"{sweep} / {target or '(untagged)'}", fontsize=9)
        ax.set_xlabel("trial")
        ax.set_ylabel(f"best {metric} so far")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def scores_vs_ground_truth_png(ev: Evaluation, ground_truth: pd.DataFrame, path: Path) -> Path:
    """Thesis Fig. 6.5: a panel per (target row, metric column), ground truth (x) against the
    metric's score (y) of each source, with its least-squares line and tau in the title.

    Args:
        ev: the evaluation; its ``scores`` (sources x targets per metric) and ``taus``.
        ground_truth: sources x targets test AUC; the source == target cell is left out, as in
            the tau.
    """
    plt = _pyplot()
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


def cd_unavailable(ev: Evaluation) -> str | None:
    """Why the critical-difference diagram of ``ev`` cannot be drawn, or None if it can."""
    methods, targets = ev.ranks.shape[1], ev.ranks.shape[0]
    if methods < 2 or targets < 2:
        return (f"the diagram needs at least two ranked methods and two targets "
                f"(here {methods} and {targets})")
    return None


def critical_difference_png(ev: Evaluation, path: Path) -> Path:
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
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * ev.ranks.shape[1]))
    sp.critical_difference_diagram(ev.average_ranks, sig, ax=ax, alpha=ev.alpha)
    ax.set_title(f"average ranks; Nemenyi CD = {ev.cd:.3f} (alpha {ev.alpha}), "
                 f"Friedman p = {ev.friedman_p:.3g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
