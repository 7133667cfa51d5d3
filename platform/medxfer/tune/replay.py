"""``medxfer benchmark replay``: replay a search strategy on a benchmark's logged grid.

For each (source, target) pair — (arch, target) for the architecture benchmark — the searcher
objects a real sweep uses (the registry :mod:`medxfer.tune.searchers`) are driven in-process, as
Tune drives them (``set_search_properties`` / ``suggest`` / ``on_trial_complete``; a
``BasicVariantGenerator`` through ``add_configurations`` / ``next_trial``). A trial "runs" by
looking up the logged ``val_loss`` / ``test_auc`` of the configuration it was given.

* Space of a pair: every param's values logged for that pair (``{param: [values]}``), as in
  ``thesis_grid.yaml``. A proposed configuration with no logged metrics (absent from the log,
  e.g. 3 of pneumoniamnist x imagenet's 120, or only FAILED runs in the architecture benchmark)
  is a failed trial: it counts, and the searcher is told ``error=True``. A configuration logged
  twice counts by its best-``val_loss`` run, so the best configuration is the ground-truth run.
* A repeated proposal (random sampling, TPE) costs a trial, as it would in a sweep.
* Selected configuration after t trials: lowest val_loss among those tried. Result per pair and
  seed: the first t at which its test AUC is within ``tolerance`` of the ground truth
  (:func:`medxfer.tracking.query.selected_runs`); ``inf`` if the budget or the space ran out.
* Priors (searchers with ``uses_prior``) are computed per target with that target's runs left
  out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.tune.search_config import Leaf
from medxfer.tune.searchers import SearchRequest, build_searcher, searcher_info
from medxfer.tune.warmstart import DEFAULT_PARAMS, WarmStartPrior, param_key, param_value

FIELD = "--searcher"

TOLERANCE = 0.005


@dataclass
class PairGrid:
    """The logged grid of one (row, target) pair."""

    row: str
    target: str
    values: dict[str, list]                 # the space: logged values of every param
    results: dict[tuple, tuple[float, float]]  # config key -> (select_by, metric) of best run
    truth: float                            # ground truth (selected run's metric)
    params: tuple[str, ...] = DEFAULT_PARAMS

    def key(self, config: dict) -> tuple:
        return tuple(param_key(config[p]) for p in self.params)

    def leaves(self) -> dict[str, Leaf]:
        """The space as ``choice`` leaves, the form every registered searcher takes."""
        return {p: Leaf(choice=list(v)) for p, v in self.values.items()}

    def configs(self) -> list[dict]:
        """Logged configurations with metrics, as config dicts."""
        return [dict(zip(self.params, k)) for k in self.results]


@dataclass
class Trace:
    row: str
    target: str
    searcher: str
    seed: int
    trials_to_within: float                 # first t within tolerance; inf if never
    trials: list[dict] = field(default_factory=list)  # per trial: config, val_loss, test_auc


def load_grids(tracking_uri: str | None = None, name: str | None = None, *,
               benchmark: str = "dataset", params: Sequence[str] = DEFAULT_PARAMS,
               select_by: str = "val_loss", metric: str = "test_auc"
               ) -> tuple[list[PairGrid], pd.DataFrame]:
    """The pairs' grids and the runs they came from (``query.grid_runs``)."""
    from medxfer.tracking.query import grid_runs, selected_runs

    params = tuple(params)
    runs = grid_runs(tracking_uri, name, benchmark=benchmark, params=params,
                     metrics=(select_by, metric))
    truth = selected_runs(tracking_uri, name, benchmark=benchmark, metric=metric,
                          select_by=select_by, mode="min")
    truth = {(r.row, r.target): float(r.value) for r in truth.itertuples()}
    grids = []
    for (row, target), g in runs.groupby(["row", "target"], sort=True):
        if (row, target) not in truth:
            continue  # no run with metrics: nothing to replay
        g = g.dropna(subset=list(params))
        values = {p: sorted({param_value(v) for v in g[p]}, key=lambda x: (str(type(x)), x))
                  for p in params}
        ok = g.dropna(subset=[select_by, metric]).sort_values([select_by, "run_id"])
        results: dict[tuple, tuple[float, float]] = {}
        for rec in ok.itertuples(index=False):
            k = tuple(param_key(getattr(rec, p)) for p in params)
            results.setdefault(k, (float(getattr(rec, select_by)), float(getattr(rec, metric))))
        grids.append(PairGrid(row, target, values, results, truth[(row, target)], params))
    return grids, runs


def _lookup_trainable(config):  # pragma: no cover - only named by BasicVariantGenerator trials
    return {}


def drive(setup, metric: str, mode: str):
    """Drive a :class:`~medxfer.tune.searchers.SearchSetup` in-process as Tune would.

    Returns:
        ``(propose, complete)``: ``propose(trial_id)`` -> a configuration, or None when the
        searcher has nothing more; ``complete(trial_id, result)`` with ``result`` None for a
        failed trial.
    """
    from ray.tune.search import BasicVariantGenerator, Searcher

    alg = setup.search_alg
    if isinstance(alg, BasicVariantGenerator):
        from ray.tune.experiment import Experiment

        alg.add_configurations([Experiment("replay", _lookup_trainable, config=setup.param_space,
                                           num_samples=setup.num_samples)])
        ids: dict[str, str] = {}

        def propose(trial_id):
            trial = alg.next_trial()
            if trial is None:
                return None
            ids[trial_id] = trial.trial_id
            return trial.config

        def complete(trial_id, result):
            alg.on_trial_complete(ids.pop(trial_id), result=result, error=result is None)
        return propose, complete

    alg.set_search_properties(metric, mode, setup.param_space)

    def propose(trial_id):
        cfg = alg.suggest(trial_id)
        return None if cfg is None or cfg == Searcher.FINISHED else cfg

    def complete(trial_id, result):
        alg.on_trial_complete(trial_id, result=result, error=result is None)
    return propose, complete


def replay_pair(grid: PairGrid, searcher: str, *, seed: int, budget: int,
                prior: WarmStartPrior | None = None, tolerance: float = TOLERANCE,
                select_by: str = "val_loss", metric: str = "test_auc",
                stop_when_within: bool = True) -> Trace:
    """Replay ``searcher`` on one pair for at most ``budget`` trials."""
    # One pass over a grid (num_samples counts passes); every other searcher samples budget.
    once = searcher_info(searcher, field=FIELD).tune_space == "grid"
    request = SearchRequest(metric=select_by, mode="min", seed=seed,
                            num_samples=1 if once else budget, prior=prior, row=grid.row)
    setup = build_searcher(searcher, grid.leaves(), request, field=FIELD)
    propose, complete = drive(setup, select_by, "min")
    best, selected, first = math.inf, math.nan, math.inf
    trace = Trace(grid.row, grid.target, searcher, seed, math.inf)
    for t in range(1, budget + 1):
        tid = f"replay_{seed}_{t:05d}"
        cfg = propose(tid)
        if cfg is None:
            break
        cfg = {p: cfg[p] for p in grid.params}
        logged = grid.results.get(grid.key(cfg))
        if logged is None:
            complete(tid, None)
            trace.trials.append({**cfg, select_by: math.nan, metric: math.nan})
        else:
            complete(tid, {select_by: logged[0], metric: logged[1]})
            trace.trials.append({**cfg, select_by: logged[0], metric: logged[1]})
            if logged[0] < best:
                best, selected = logged[0], logged[1]
        if first == math.inf and abs(selected - grid.truth) <= tolerance + 1e-12:
            first = t
            if stop_when_within:
                break
    trace.trials_to_within = first
    return trace


def priors_by_target(runs: pd.DataFrame, targets: Sequence[str], *,
                     params: Sequence[str] = DEFAULT_PARAMS,
                     select_by: str = "val_loss") -> dict[str, WarmStartPrior]:
    """One leave-target-out prior per target (each computed without that target's runs)."""
    return {t: WarmStartPrior.from_runs(runs, exclude_target=t, params=params, metric=select_by)
            for t in sorted(set(targets))}


def replay(tracking_uri: str | None = None, name: str | None = None, *,
           searchers: Sequence[str], benchmark: str = "dataset", budget: int = 120,
           seeds: int | Sequence[int] = 1, tolerance: float = TOLERANCE,
           pairs: Sequence[tuple[str, str]] | None = None,
           params: Sequence[str] = DEFAULT_PARAMS,
           progress: Callable[[str, int, int], None] | None = None) -> pd.DataFrame:
    """Per (searcher, row, target, seed): trials until within ``tolerance`` (inf: not reached).

    ``seeds``: a count K (seeds 0..K-1) or explicit seeds. ``pairs``: restrict to these
    (row, target) pairs.
    """
    uses_prior = {s for s in searchers if searcher_info(s, field=FIELD).uses_prior}
    if budget < 1:
        raise MedxferInputError("budget must be >= 1", field="budget")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise MedxferInputError("seeds must be >= 1", field="seeds")
    grids, runs = load_grids(tracking_uri, name, benchmark=benchmark, params=params)
    if pairs is not None:
        wanted = set(map(tuple, pairs))
        grids = [g for g in grids if (g.row, g.target) in wanted]
    if not grids:
        raise MedxferInputError("no (row, target) pair with logged runs to replay", field="name")
    priors = (priors_by_target(runs, [g.target for g in grids], params=params)
              if uses_prior else {})
    rows = []
    total, done = len(searchers) * len(grids) * len(seed_list), 0
    for s in searchers:
        for g in grids:
            for seed in seed_list:
                t0 = time.perf_counter()
                tr = replay_pair(g, s, seed=seed, budget=budget, tolerance=tolerance,
                                 prior=priors.get(g.target) if s in uses_prior else None)
                rows.append({"searcher": s, "row": g.row, "target": g.target, "seed": seed,
                             "trials": tr.trials_to_within, "tried": len(tr.trials),
                             "seconds": time.perf_counter() - t0})
                done += 1
                if progress:
                    progress(s, done, total)
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """Per searcher over all (pair, seed): median, p90, mean of trials-to-within; pairs not
    reached within the budget count as ``inf`` (so a p90 of inf means > 10 % never reached)."""
    out = []
    for s, g in results.groupby("searcher", sort=False):
        x = g["trials"].to_numpy(dtype=float)
        finite = np.isfinite(x)
        out.append({
            "searcher": s,
            "median": _pct(x, 50),
            "p90": _pct(x, 90), "mean": float(x.mean()) if finite.all() else math.inf,
            "max": float(x.max()), "unreached": int((~finite).sum()), "n": len(x),
        })
    return pd.DataFrame(out).set_index("searcher")


def _pct(x: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile where ``inf`` (not reached) may be among the values: the
    result is inf as soon as an inf value gets any weight."""
    v = np.sort(np.asarray(x, dtype=float))
    pos = q / 100 * (len(v) - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    frac = pos - lo
    if not math.isfinite(v[lo]) or (frac > 0 and not math.isfinite(v[hi])):
        return math.inf
    return float(v[lo] + (v[hi] - v[lo]) * frac)
