"""Best-so-far curves of sweeps: the best validation metric reached after each trial.

Pure functions on the long trial table of :func:`medxfer.tracking.query.sweep_trials`; nothing
here reads MLflow.
"""

from __future__ import annotations

import pandas as pd

ALL_SOURCES = "all sources"
CURVE_COLS = ["sweep", "target", "line", "trial", "run_id", "value", "best"]


def trial_values(trials: pd.DataFrame, metric: str = "val_loss", mode: str = "min") -> pd.DataFrame:
    """One row per trial: its best ``metric`` over its logged steps (min or max by ``mode``).

    Trials keep the store's order (start time, then run id) and get ``trial`` = 1, 2, ... per
    sweep. Columns: sweep, run_id, start_time, source, target, trial, value.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode {mode!r}: expected 'min' or 'max'")
    cols = ["sweep", "run_id", "start_time", "source", "target", "trial", "value"]
    rows = trials[trials["key"] == metric]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    keys = ["sweep", "run_id", "start_time", "source", "target"]
    per = rows.fillna({"source": "", "target": ""}).groupby(keys, sort=False)["value"]
    out = (per.min() if mode == "min" else per.max()).reset_index()
    out = out.sort_values(["sweep", "start_time", "run_id"]).reset_index(drop=True)
    out["trial"] = out.groupby("sweep").cumcount() + 1
    return out[cols]


def best_so_far(trials: pd.DataFrame, metric: str = "val_loss", mode: str = "min") -> pd.DataFrame:
    """Running best of ``metric`` per (sweep, target): one line per source and, where a target
    has trials of several sources, a line ``ALL_SOURCES`` over all of them.

    ``trial`` is the trial's place among all trials of its (sweep, target) in start order
    (1, 2, ...), so the lines of one target share an x axis; ``value`` is the trial's own best,
    ``best`` the running min (``mode="min"``) or max of its line up to it. Columns:
    ``CURVE_COLS``.
    """
    per_trial = trial_values(trials, metric, mode)
    if per_trial.empty:
        return pd.DataFrame(columns=CURVE_COLS)
    lines = []
    for (sweep, target), g in per_trial.groupby(["sweep", "target"], sort=True):
        g = g.sort_values("trial").assign(trial=range(1, len(g) + 1))
        groups = [(src, gs) for src, gs in g.groupby("source", sort=True)]
        if len(groups) > 1:
            groups.append((ALL_SOURCES, g))
        for line, gl in groups:
            gl = gl.sort_values("trial")
            best = gl["value"].cummin() if mode == "min" else gl["value"].cummax()
            lines.append(pd.DataFrame({
                "sweep": sweep, "target": target, "line": line,
                "trial": gl["trial"].to_numpy(), "run_id": gl["run_id"].to_numpy(),
                "value": gl["value"].to_numpy(float), "best": best.to_numpy(float)}))
    return pd.concat(lines, ignore_index=True)[CURVE_COLS]
