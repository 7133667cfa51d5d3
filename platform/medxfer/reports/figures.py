"""Matplotlib figures of the report (PNG, Agg backend): ground-truth heatmap, best-so-far curves.

The score-vs-ground-truth grid and the critical-difference diagram come from
:mod:`medxfer.transferability.evaluation_report`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from medxfer.reports.sweeps import ALL_SOURCES


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
