"""Searchers by name, and ``warmstart``: a Ray Tune ``Searcher`` with a leave-target-out prior.

Every entry of :data:`SEARCHERS` builds what a real sweep hands to Ray Tune —
``Tuner(trainable, param_space=..., tune_config=TuneConfig(search_alg=..., num_samples=...))`` —
from a finite space (``{param: [values]}``, the grid of ``search_spaces/thesis_grid.yaml``). The
benchmark replay (:mod:`medxfer.tune.replay`) drives the very same objects in-process.

* ``grid``: ``BasicVariantGenerator`` over ``tune.grid_search`` of every param (Ray's order).
* ``random``: ``BasicVariantGenerator`` over ``tune.choice`` (samples with replacement, as a
  real random search does: a repeated configuration costs a trial).
* ``shuffled``: ``BasicVariantGenerator`` given the whole grid as ``points_to_evaluate`` in a
  seeded random order: random search without replacement.
* ``hyperopt``: ``HyperOptSearch`` (TPE) over ``tune.choice`` (= ``hp.choice``) of every param.
* ``prior``: :class:`WarmStartSearcher` without adaptivity: the warm-start order only.
* ``warmstart``: :class:`WarmStartSearcher`: never repeats a grid point; starts with the
  configurations that ranked best on the *other* targets of a benchmark held in MLflow
  (:class:`WarmStartPrior`, leave-target-out by construction) and, as results come in,
  reweights those other (source, target) tasks by how well their logged val-loss ranking agrees
  with the ranking observed so far on this task (a posterior over "which logged task is this
  one like"), then proposes the untried configuration with the best weighted prior rank.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError

try:  # the searcher must subclass Ray's; the prior alone works without Ray installed
    from ray.tune.search import Searcher
except ImportError:  # pragma: no cover
    Searcher = object  # type: ignore[misc,assignment]

DEFAULT_PARAMS = ("lr", "wd", "momentum", "batch_size")
# Params whose values differ between targets but play the same role: keyed by their position
# among a task's sorted values (the benchmark's two batch sizes per target: 32/64 ... 256/512).
DEFAULT_ORDINAL = ("batch_size",)


def param_value(raw: Any) -> Any:
    """A logged param (string) as a number where it is one: ``"64"`` -> 64, ``"1e-05"`` -> 1e-05."""
    if isinstance(raw, (int, float, np.integer, np.floating)) and not isinstance(raw, bool):
        f = float(raw)
        return int(f) if f.is_integer() and isinstance(raw, (int, np.integer)) else f
    s = str(raw).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _norm(v: Any) -> Any:
    """Comparable key of a param value (1 == 1.0 == "1.0"; 12 significant digits)."""
    v = param_value(v)
    if isinstance(v, (int, float)):
        return float(f"{float(v):.12g}")
    return v


def feature_keys(configs: Sequence[dict], params: Sequence[str],
                 ordinal: Sequence[str] = DEFAULT_ORDINAL) -> list[tuple]:
    """Keys under which configurations of different tasks are compared: the params' values,
    except ``ordinal`` params, keyed by their rank among the values present in ``configs``."""
    ranks = {}
    for p in ordinal:
        if p in params:
            values = sorted({_norm(c[p]) for c in configs}, key=lambda x: (str(type(x)), x))
            ranks[p] = {v: i for i, v in enumerate(values)}
    return [tuple(("#", ranks[p][_norm(c[p])]) if p in ranks else _norm(c[p]) for p in params)
            for c in configs]


def _rank01(values: np.ndarray, mode: str) -> np.ndarray:
    """Ranks scaled to [0, 1], 0 = best (average ranks for ties)."""
    s = pd.Series(values if mode == "min" else -values).rank(method="average").to_numpy()
    return (s - 1) / max(len(s) - 1, 1)


@dataclass
class WarmStartPrior:
    """Normalized val-loss ranks of the configurations of logged tasks (never of one target).

    ``ranks[j, k]``: rank in [0, 1] (0 = best ``metric``) of configuration key ``keys[k]`` in
    task ``tasks[j]`` = (row, target); NaN where that task has no run with that configuration.
    ``excluded_target`` is the target whose runs were left out before anything was computed.
    """

    params: tuple[str, ...]
    ordinal: tuple[str, ...]
    tasks: list[tuple[str, str]]
    keys: list[tuple]
    ranks: np.ndarray
    excluded_target: str | None
    metric: str = "val_loss"
    mode: str = "min"
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._index = {k: i for i, k in enumerate(self.keys)}

    @classmethod
    def from_runs(cls, runs: pd.DataFrame, *, exclude_target: str | None,
                  params: Sequence[str] = DEFAULT_PARAMS,
                  ordinal: Sequence[str] = DEFAULT_ORDINAL, metric: str = "val_loss",
                  mode: str = "min") -> WarmStartPrior:
        """From :func:`medxfer.tracking.query.grid_runs` rows (``row``, ``target``, params,
        ``metric``). Rows of ``exclude_target`` are dropped first: the prior of a target never
        sees that target's runs. ``exclude_target=None`` keeps all (a target not in the log)."""
        params, ordinal = tuple(params), tuple(p for p in ordinal if p in params)
        df = runs
        if exclude_target is not None:
            df = df[df["target"] != exclude_target]
        df = df.dropna(subset=[metric, *params])
        tasks, per_task = [], []
        for (row, target), g in df.groupby(["row", "target"], sort=True):
            g = g.sort_values([metric, "run_id"] if "run_id" in g else [metric],
                              ascending=mode == "min")
            cfgs = g[list(params)].to_dict("records")
            keys = feature_keys(cfgs, params, ordinal)
            # A configuration logged twice (reruns) counts once, by its best run.
            first = {}
            for k, v in zip(keys, g[metric].to_numpy(dtype=float)):
                first.setdefault(k, v)
            tasks.append((row, target))
            per_task.append(first)
        all_keys = sorted({k for d in per_task for k in d}, key=repr)
        index = {k: i for i, k in enumerate(all_keys)}
        ranks = np.full((len(tasks), len(all_keys)), np.nan)
        for j, d in enumerate(per_task):
            ks = list(d)
            ranks[j, [index[k] for k in ks]] = _rank01(np.array([d[k] for k in ks]), mode)
        return cls(params, ordinal, tasks, all_keys, ranks, exclude_target, metric, mode)

    @classmethod
    def from_mlflow(cls, tracking_uri: str | None = None, name: str | None = None, *,
                    exclude_target: str | None, benchmark: str = "dataset",
                    params: Sequence[str] = DEFAULT_PARAMS,
                    ordinal: Sequence[str] = DEFAULT_ORDINAL, metric: str = "val_loss",
                    mode: str = "min") -> WarmStartPrior:
        """The prior of a sweep on ``exclude_target`` from a benchmark held in MLflow."""
        from medxfer.tracking.query import grid_runs

        runs = grid_runs(tracking_uri, name, benchmark=benchmark, params=tuple(params),
                         metrics=(metric,))
        return cls.from_runs(runs, exclude_target=exclude_target, params=params,
                             ordinal=ordinal, metric=metric, mode=mode)

    def matrix(self, configs: Sequence[dict]) -> np.ndarray:
        """``ranks`` restricted to ``configs``: tasks x len(configs), NaN where unknown."""
        cols = [self._index.get(k) for k in feature_keys(configs, self.params, self.ordinal)]
        out = np.full((len(self.tasks), len(configs)), np.nan)
        for c, i in enumerate(cols):
            if i is not None:
                out[:, c] = self.ranks[:, i]
        return out

    def order(self, configs: Sequence[dict]) -> list[int]:
        """Indices of ``configs`` by mean prior rank (the non-adaptive warm-start order)."""
        return WarmStartSearcher(prior=self, candidates=list(configs), adaptive=False,
                                 metric=self.metric, mode=self.mode)._ranked()


@dataclass
class ConfigKeyPrior:
    """A :class:`WarmStartPrior` seen through a sweep's config keys (the one adapter between
    the two vocabularies).

    The prior's feature keys are the benchmark's logged param names (``lr``, ``wd``, ...); a
    sweep's configurations are keyed by dotted config paths (``train.lr``, ...). ``keys`` maps
    each param of the prior to the config key holding it. :class:`WarmStartSearcher` only calls
    :meth:`matrix`, so the searcher itself is unchanged and keeps proposing config-keyed dicts;
    config keys not in ``keys`` (other searched knobs) do not enter the prior: configurations
    that differ only in them share their prior rank (ties broken by the searcher's seed).
    """

    prior: WarmStartPrior
    keys: dict[str, str]  # prior param -> config key

    def __post_init__(self):
        missing = [p for p in self.prior.params if p not in self.keys]
        if missing:
            raise MedxferInputError(f"prior params {', '.join(missing)} have no config key",
                                    field="params")
        self.keys = {p: self.keys[p] for p in self.prior.params}

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return self.prior.tasks

    @property
    def excluded_target(self) -> str | None:
        return self.prior.excluded_target

    def to_prior(self, config: dict) -> dict:
        """``{"train.lr": 0.1, ...}`` -> ``{"lr": 0.1, ...}`` (the prior's params only)."""
        return {p: config[k] for p, k in self.keys.items()}

    def matrix(self, configs: Sequence[dict]) -> np.ndarray:
        return self.prior.matrix([self.to_prior(c) for c in configs])

    def order(self, configs: Sequence[dict]) -> list[int]:
        return WarmStartSearcher(prior=self, candidates=list(configs), adaptive=False,
                                 metric=self.prior.metric, mode=self.prior.mode)._ranked()


def _space_values(space: dict) -> dict[str, list]:
    """``{param: [values]}`` from a Tune param space (choice / grid_search / list / constant)."""
    out = {}
    for k, v in space.items():
        if hasattr(v, "categories"):
            out[k] = list(v.categories)
        elif isinstance(v, dict) and "grid_search" in v:
            out[k] = list(v["grid_search"])
        elif isinstance(v, (list, tuple)):
            out[k] = list(v)
        elif hasattr(v, "sample"):
            raise MedxferInputError(f"search space {k!r}: warmstart needs a finite space "
                                    "(choice or grid), not a continuous distribution",
                                    field="space")
        else:
            out[k] = [v]
    return out


class WarmStartSearcher(Searcher):
    """Prior-ranked, adaptively reweighted search over a finite set of configurations.

    ``candidates``: the configurations (dicts); default the cartesian product of the param
    space Tune passes to :meth:`set_search_properties` (or of ``space``). Each candidate is
    proposed at most once; :meth:`suggest` returns ``Searcher.FINISHED`` when all were.
    ``prior``: a :class:`WarmStartPrior`, or a :class:`ConfigKeyPrior` when the candidates are
    keyed by config paths (None: candidates in the given order, then adaptive
    ranking has nothing to weigh). ``seed`` breaks ties. ``confidence``: the assumed
    probability that a logged task orders a pair of configurations as this task does; it sets
    how fast the weights concentrate on the tasks that agree with the observations.
    """

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, *, prior: WarmStartPrior | None = None,
                 candidates: list[dict] | None = None, seed: int | None = None,
                 adaptive: bool = True, confidence: float = 0.75, min_observed: int = 2):
        super().__init__(metric=metric, mode=mode)
        self._prior = prior
        self._space = space
        self._candidates: list[dict] | None = [dict(c) for c in candidates] if candidates else None
        self._seed = seed
        self._adaptive = adaptive
        self._logit = math.log(confidence / (1 - confidence))
        self._min_observed = min_observed
        self._tried: list[int] = []              # candidate indices, in proposal order
        self._values: dict[int, float] = {}      # candidate index -> observed metric (NaN: failed)
        self._live: dict[str, int] = {}          # trial id -> candidate index
        self._R: np.ndarray | None = None
        if self._candidates is None and space:
            self._set_candidates_from_space(space)
        elif self._candidates is not None:
            self._setup()

    # --- Tune API ---------------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self._candidates is not None and self._tried:
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if self._candidates is None and config:
            self._set_candidates_from_space(config)
        return True

    def suggest(self, trial_id: str):
        if self._candidates is None:
            return None
        untried = len(self._candidates) - len(self._tried)
        if untried <= 0:
            return Searcher.FINISHED
        idx = self._next()
        self._tried.append(idx)
        self._live[trial_id] = idx
        return dict(self._candidates[idx])

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        idx = self._live.pop(trial_id, None)
        if idx is None:
            return
        value = float("nan")
        if not error and result and self._metric in result and result[self._metric] is not None:
            value = float(result[self._metric])
        self._values[idx] = value

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))

    # --- internals --------------------------------------------------------------------------
    def _set_candidates_from_space(self, space: dict) -> None:
        values = _space_values(space)
        names = list(values)
        self._candidates = [dict(zip(names, combo))
                            for combo in itertools.product(*(values[n] for n in names))]
        self._setup()

    def _setup(self) -> None:
        n = len(self._candidates)
        rng = np.random.default_rng(self._seed)
        self._tiebreak = rng.permutation(n) if self._seed is not None else np.arange(n)
        if self._prior is not None:
            R = self._prior.matrix(self._candidates)
            self._R = R[~np.all(np.isnan(R), axis=1)]  # tasks that know none of ours: drop
        else:
            self._R = np.zeros((0, n))

    def _weights(self) -> np.ndarray:
        R = self._R
        w = np.ones(R.shape[0])
        if not self._adaptive or R.shape[0] == 0:
            return w
        obs = [i for i in self._tried if i in self._values and np.isfinite(self._values[i])]
        if len(obs) < self._min_observed:
            return w
        y = np.array([self._values[i] for i in obs])
        if self._mode == "max":
            y = -y
        dy = np.sign(y[:, None] - y[None, :])                       # n x n
        Ro = R[:, obs]                                              # T x n
        dr = np.sign(Ro[:, :, None] - Ro[:, None, :])               # T x n x n
        dr = np.nan_to_num(dr, nan=0.0)
        agree = ((dr * dy[None]) > 0).sum(axis=(1, 2)) / 2
        disagree = ((dr * dy[None]) < 0).sum(axis=(1, 2)) / 2
        logw = self._logit * (agree - disagree)
        return np.exp(logw - logw.max())

    def _scores(self) -> np.ndarray:
        R = self._R
        n = len(self._candidates)
        if R.shape[0] == 0:
            return np.zeros(n)
        w = self._weights()
        known = ~np.isnan(R)
        num = (np.nan_to_num(R) * w[:, None]).sum(axis=0)
        den = (known * w[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = num / den
        return np.where(den > 0, s, 0.5)  # no prior knowledge: middle of the pack

    def _ranked(self) -> list[int]:
        s = self._scores()
        return list(np.lexsort((self._tiebreak, s)))

    def _next(self) -> int:
        tried = set(self._tried)
        s = self._scores()
        s = np.where([i in tried for i in range(len(s))], np.inf, s)
        order = np.lexsort((self._tiebreak, s))
        return int(order[0])


# --- registry -------------------------------------------------------------------------------

@dataclass
class SearchSetup:
    """What a sweep hands to Ray Tune: ``Tuner(param_space=..., TuneConfig(search_alg=...,
    num_samples=...))``. ``search_alg`` is a ``Searcher`` or a ``BasicVariantGenerator``."""

    search_alg: Any
    param_space: dict
    num_samples: int


Factory = Callable[..., SearchSetup]


def _grid(values, *, metric, mode, seed, budget, prior=None, candidates=None) -> SearchSetup:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    return SearchSetup(BasicVariantGenerator(),
                       {k: tune.grid_search(list(v)) for k, v in values.items()}, 1)


def _random(values, *, metric, mode, seed, budget, prior=None, candidates=None) -> SearchSetup:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    return SearchSetup(BasicVariantGenerator(random_state=seed),
                       {k: tune.choice(list(v)) for k, v in values.items()}, budget)


def _shuffled(values, *, metric, mode, seed, budget, prior=None, candidates=None) -> SearchSetup:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    names = list(values)
    grid = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    order = np.random.default_rng(seed).permutation(len(grid))
    return SearchSetup(BasicVariantGenerator(points_to_evaluate=[grid[i] for i in order]),
                       {k: tune.choice(list(v)) for k, v in values.items()}, len(grid))


def _hyperopt(values, *, metric, mode, seed, budget, prior=None, candidates=None) -> SearchSetup:
    from ray import tune
    from ray.tune.search.hyperopt import HyperOptSearch

    return SearchSetup(HyperOptSearch(metric=metric, mode=mode, random_state_seed=seed),
                       {k: tune.choice(list(v)) for k, v in values.items()}, budget)


def _warm(adaptive: bool) -> Factory:
    """Replay and real sweeps (``search.algorithm: warmstart`` via
    :func:`medxfer.tune.search.make_searcher`) build the warm-start searcher here."""
    def build(values, *, metric, mode, seed, budget, prior=None, candidates=None) -> SearchSetup:
        from ray import tune

        alg = WarmStartSearcher(metric=metric, mode=mode, prior=prior, candidates=candidates,
                                seed=seed, adaptive=adaptive)
        return SearchSetup(alg, {k: tune.choice(list(v)) for k, v in values.items()}, budget)
    return build


SEARCHERS: dict[str, Factory] = {
    "grid": _grid,
    "random": _random,
    "shuffled": _shuffled,
    "hyperopt": _hyperopt,
    "prior": _warm(adaptive=False),
    "warmstart": _warm(adaptive=True),
}
# Searchers that use a WarmStartPrior (computed leave-target-out by the caller).
USES_PRIOR = frozenset({"prior", "warmstart"})


def build_searcher(name: str, values: dict[str, list], *, metric: str = "val_loss",
                   mode: str = "min", seed: int | None = None, budget: int = 100,
                   prior: WarmStartPrior | None = None,
                   candidates: list[dict] | None = None) -> SearchSetup:
    """The registered searcher ``name`` over ``values`` (``{param: [values]}``)."""
    if name not in SEARCHERS:
        raise MedxferInputError(f"searcher {name!r}: expected one of {', '.join(SEARCHERS)}",
                                field="searcher")
    return SEARCHERS[name](values, metric=metric, mode=mode, seed=seed, budget=budget,
                           prior=prior, candidates=candidates)
