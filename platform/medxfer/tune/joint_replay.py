"""``medxfer benchmark replay --joint``: choosing the source and its configuration together,
replayed on a benchmark's logged runs and scored by regret.

Per target of the benchmark (those the score table has a column for), a procedure "trains" up
to B of the logged (source, configuration) runs — a trial looks up the run's logged
``val_loss`` / ``val_auc``; a configuration never logged is a failed trial that still counts —
and keeps one of them. Its **regret** is the oracle's test AUC minus the kept run's test AUC,
where the oracle is the best source's ground truth (:func:`medxfer.tracking.query.selected_runs`:
per (source, target) the test AUC of the run with the lowest val loss). So training every run
and keeping the lowest val loss has regret > 0 wherever val loss prefers another source.

Procedures (``all``, ``random`` and ``ranked`` keep the lowest val loss among the B runs):

* ``all``: every logged run of the target (B does not apply).
* ``random``: the target's logged runs in a seeded random order.
* ``ranked``: sources by transferability score (best first; no score last), each source's
  logged runs in a seeded random order.
* ``joint``: :class:`medxfer.tune.joint.JointSearcher`, driven as Tune drives it
  (``set_search_properties`` / ``suggest`` / ``on_trial_complete``), keeping its own pick
  (:meth:`~medxfer.tune.joint.JointSearcher.selected`). Its priors are computed per target with
  that target's runs left out (the guard in :class:`~medxfer.tune.joint.JointPrior` rejects any
  other); the target's own runs are only looked up as the results of the trials it proposes.

Summary per (procedure, budget): ``mean_regret`` over targets and seeds, and
``targets_within``: how many targets have a seed-mean regret <= ``tolerance``.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.tune.joint import JointSearcher
from medxfer.tune.joint_prior import (
    PRIOR_WEIGHT,
    JointPrior,
    SourcePrior,
    calibrate_prior_weight,
)
from medxfer.tune.warmstart import DEFAULT_PARAMS, WarmStartPrior, param_key, param_value

PROCEDURES = ("all", "random", "ranked", "joint")
BUDGETS = (10, 20, 30, 50, 200)
TOLERANCE = 0.005
Result = tuple[float, float, float]  # val_loss, val_auc, test_auc of a logged configuration


@dataclass
class TargetLog:
    """The logged runs of one target: per source, per configuration key, its best-val-loss run."""

    target: str
    params: tuple[str, ...]
    values: dict[str, list]                  # the space: logged values of every param
    results: dict[str, dict[tuple, Result]]  # source -> config key -> result
    truth: dict[str, float]                  # source -> ground truth (test AUC)

    @property
    def sources(self) -> list[str]:
        return sorted(self.results)

    @property
    def oracle(self) -> float:
        return max(self.truth.values())

    def key(self, config: dict) -> tuple:
        return tuple(param_key(config[p]) for p in self.params)

    def runs(self) -> list[tuple[str, tuple]]:
        """Every logged (source, config key) with a result, in a fixed order."""
        return [(s, k) for s in self.sources for k in sorted(self.results[s], key=repr)]


def load_targets(tracking_uri: str | None, name: str | None, *, benchmark: str = "dataset",
                 params: Sequence[str] = DEFAULT_PARAMS, targets: Sequence[str] | None = None
                 ) -> tuple[list[TargetLog], pd.DataFrame, pd.DataFrame]:
    """``(logs, runs, selected)``: per target its :class:`TargetLog`, plus the
    ``query.grid_runs`` and ``query.selected_runs`` frames the priors are computed from."""
    from medxfer.tracking.query import grid_runs, selected_runs

    params = tuple(params)
    runs = grid_runs(tracking_uri, name, benchmark=benchmark, params=params,
                     metrics=("val_loss", "val_auc", "test_auc"))
    selected = selected_runs(tracking_uri, name, benchmark=benchmark, metric="test_auc",
                             select_by="val_loss", mode="min")
    truth = {(r.row, r.target): float(r.value) for r in selected.itertuples()}
    logs = []
    for target, g in runs.groupby("target", sort=True):
        if targets is not None and target not in targets:
            continue
        g = g.dropna(subset=list(params))
        values = {p: sorted({param_value(v) for v in g[p]}, key=lambda x: (str(type(x)), x))
                  for p in params}
        ok = g.dropna(subset=["val_loss", "test_auc"]).sort_values(["val_loss", "run_id"])
        results: dict[str, dict[tuple, Result]] = {}
        for rec in ok.itertuples(index=False):
            k = tuple(param_key(getattr(rec, p)) for p in params)
            results.setdefault(rec.row, {}).setdefault(
                k, (float(rec.val_loss), float(rec.val_auc), float(rec.test_auc)))
        pair_truth = {s: truth[(s, target)] for s in results if (s, target) in truth}
        if pair_truth:
            logs.append(TargetLog(target, params, values,
                                  {s: results[s] for s in pair_truth}, pair_truth))
    return logs, runs, selected


def _rng(seed: int, target: str) -> np.random.Generator:
    """One generator per (seed, target), independent of which other targets are replayed."""
    return np.random.default_rng([seed, zlib.crc32(target.encode())])


def _keep_lowest_val_loss(log: TargetLog, order: Sequence[tuple[str, tuple]]) -> tuple[float, str]:
    """(test AUC, source) of the run with the lowest val loss among ``order``."""
    best = min(order, key=lambda r: log.results[r[0]][r[1]][0])
    return log.results[best[0]][best[1]][2], best[0]


def order_random(log: TargetLog, seed: int) -> list[tuple[str, tuple]]:
    runs = log.runs()
    return [runs[i] for i in _rng(seed, log.target).permutation(len(runs))]


def order_ranked(log: TargetLog, scores: pd.Series, seed: int) -> list[tuple[str, tuple]]:
    """Sources by score (best first; NaN last; ties by name), each grid in random order."""
    rng = _rng(seed, log.target)
    ranked = sorted(log.sources, key=lambda s: (-_score(scores, s), s))
    out = []
    for s in ranked:
        keys = sorted(log.results[s], key=repr)
        out += [(s, keys[i]) for i in rng.permutation(len(keys))]
    return out


def _score(scores: pd.Series, source: str) -> float:
    v = scores.get(source, math.nan)
    return -math.inf if v is None or not math.isfinite(v) else float(v)


def run_joint(log: TargetLog, prior: JointPrior, *, budget: int, seed: int,
              **searcher_kw) -> dict:
    """Replay the joint searcher on ``log`` for ``budget`` trials; its pick and alternatives.

    Raises:
        MedxferInputError: ``prior`` is not the leave-target-out prior of ``log.target``.
    """
    if prior.target != log.target:
        raise MedxferInputError(f"replaying target {log.target!r} with the prior of "
                                f"{prior.target!r}: each target needs its own leave-target-out "
                                "prior", field="prior")
    space = {"source": log.sources, **log.values}
    alg = JointSearcher(metric="val_loss", mode="min", prior=prior, seed=seed, **searcher_kw)
    alg.set_search_properties("val_loss", "min", space)
    tried = []
    for t in range(budget):
        tid = f"joint_{seed}_{t:05d}"
        cfg = alg.suggest(tid)
        if cfg is None or cfg == JointSearcher.FINISHED:
            break
        res = log.results[cfg["source"]].get(log.key(cfg))
        alg.on_trial_complete(tid, result=None if res is None else
                              {"val_loss": res[0], "val_auc": res[1]}, error=res is None)
        if res is not None:
            tried.append((cfg["source"], log.key(cfg)))
    pick = alg.selected()
    out = {"trials": len(alg.trials), "source": None, "test_auc": math.nan,
           "by_val_loss": math.nan, "by_val_auc": math.nan}
    if pick is not None:
        out["source"] = pick["source"]
        out["test_auc"] = log.results[pick["source"]][log.key(pick["config"])][2]
        out["by_val_loss"] = _keep_lowest_val_loss(log, tried)[0]
        auc = max(tried, key=lambda r: (log.results[r[0]][r[1]][1], -log.results[r[0]][r[1]][0]))
        out["by_val_auc"] = log.results[auc[0]][auc[1]][2]
    return out


def replay_joint(tracking_uri: str | None = None, name: str | None = None, *,
                 scores: pd.DataFrame, benchmark: str = "dataset",
                 budgets: Sequence[int] = BUDGETS, seeds: int | Sequence[int] = 5,
                 procedures: Sequence[str] = PROCEDURES,
                 params: Sequence[str] = DEFAULT_PARAMS, prior_weight: float | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 **searcher_kw) -> pd.DataFrame:
    """Regret per (procedure, budget, target, seed).

    Args:
        scores: sources x targets transferability scores (higher is better); the targets
            replayed are its columns that the benchmark has runs for.
        budgets: trainings per target. seeds: a count K (seeds 0..K-1) or explicit seeds.
        prior_weight: the joint searcher's weight of the source prior (None: calibrated per
            target on the other targets' scores, :func:`joint_prior`).

    Returns:
        Columns ``procedure, budget, target, seed, regret, source, trials, seconds``; joint
        rows add ``prior_weight`` and ``regret_by_val_loss`` / ``regret_by_val_auc`` (the
        same trials, kept by the lowest val loss / highest val AUC instead).
    """
    bad = [p for p in procedures if p not in PROCEDURES]
    if bad:
        raise MedxferInputError(f"procedure(s) {', '.join(bad)}: expected one of "
                                f"{', '.join(PROCEDURES)}", field="procedure")
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise MedxferInputError(f"budgets {budgets}: expected integers >= 1", field="budgets")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise MedxferInputError("seeds must be >= 1", field="seeds")
    logs, runs, selected = load_targets(tracking_uri, name, benchmark=benchmark, params=params,
                                        targets=[str(c) for c in scores.columns])
    if not logs:
        raise MedxferInputError(
            f"no target in common between the scores ({', '.join(map(str, scores.columns))}) "
            "and the benchmark's runs", field="scores")
    rows: list[dict] = []
    total = len(procedures) * len(logs) * len(seed_list) * len(budgets)
    done = 0
    for proc in procedures:
        for log in logs:
            prior = (joint_prior(log.target, runs, selected, scores, prior_weight=prior_weight)
                     if proc == "joint" else None)
            for seed in seed_list:
                for row in _procedure_rows(proc, log, scores[log.target], prior, seed, budgets,
                                           searcher_kw):
                    rows.append({"procedure": proc, "target": log.target, "seed": seed, **row})
                done += len(budgets)
                if progress:
                    progress(proc, done, total)
    return pd.DataFrame(rows)


def joint_prior(target: str, runs: pd.DataFrame, selected: pd.DataFrame,
                scores: pd.DataFrame, *, params: Sequence[str] = DEFAULT_PARAMS,
                prior_weight: float | None = None) -> JointPrior:
    """The joint searcher's leave-target-out prior for ``target`` from the benchmark's runs.

    ``scores``: sources x targets; the column ``target`` ranks the sources, the other columns
    calibrate the source prior's weight (:func:`~medxfer.tune.joint.calibrate_prior_weight`)
    unless ``prior_weight`` is given.
    """
    configs = WarmStartPrior.from_runs(runs, exclude_target=target, params=params)
    sources = SourcePrior.from_selected(selected, exclude_target=target)
    if prior_weight is None:
        prior_weight = calibrate_prior_weight(target, scores, selected)
    if prior_weight is None:
        prior_weight = PRIOR_WEIGHT
    column = scores[target] if target in scores.columns else pd.Series(dtype=float)
    clean = {str(s): float(v) for s, v in column.items() if v is not None and math.isfinite(v)}
    return JointPrior(target, clean, configs, sources, prior_weight)


def _procedure_rows(proc, log, scores, prior, seed, budgets, searcher_kw):
    t0 = time.perf_counter()
    if proc == "all":
        auc, src = _keep_lowest_val_loss(log, log.runs())
        n = len(log.runs())
        return [_row(b, log, auc, src, n, t0) for b in budgets]
    if proc in ("random", "ranked"):
        order = order_random(log, seed) if proc == "random" else order_ranked(log, scores, seed)
        out = []
        for b in budgets:
            auc, src = _keep_lowest_val_loss(log, order[:b])
            out.append(_row(b, log, auc, src, min(b, len(order)), t0))
        return out
    out = []
    for b in budgets:
        t0 = time.perf_counter()
        r = run_joint(log, prior, budget=b, seed=seed, **searcher_kw)
        out.append({**_row(b, log, r["test_auc"], r["source"], r["trials"], t0),
                    "prior_weight": prior.prior_weight,
                    "regret_by_val_loss": log.oracle - r["by_val_loss"],
                    "regret_by_val_auc": log.oracle - r["by_val_auc"]})
    return out


def _row(budget, log, auc, source, trials, t0) -> dict:
    return {"budget": budget, "regret": log.oracle - auc, "source": source, "trials": trials,
            "seconds": time.perf_counter() - t0}


def summarize_joint(rows: pd.DataFrame, *, tolerance: float = TOLERANCE,
                    column: str = "regret") -> pd.DataFrame:
    """Per (procedure, budget): ``mean_regret`` (over targets and seeds), ``targets_within``
    (targets whose seed-mean ``column`` is <= ``tolerance``) and ``targets``."""
    out = []
    for (proc, budget), g in rows.groupby(["procedure", "budget"], sort=False):
        per_target = g.groupby("target")[column].mean()
        out.append({"procedure": proc, "budget": int(budget),
                    "mean_regret": float(g[column].mean()),
                    "targets_within": int((per_target <= tolerance + 1e-12).sum()),
                    "targets": int(len(per_target))})
    return pd.DataFrame(out)


def joint_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The issue's table: procedures x ``B = b`` cells ``mean regret (within/targets)``."""
    cells = {}
    for r in summary.itertuples(index=False):
        cells.setdefault(r.procedure, {})[f"B = {r.budget}"] = (
            f"{r.mean_regret:.4f} ({r.targets_within}/{r.targets})")
    table = pd.DataFrame.from_dict(cells, orient="index")
    table.index.name = "procedure"
    return table
