"""The warm-start searcher: a Ray Tune ``Searcher`` with a leave-target-out prior from MLflow.

:class:`WarmStartSearcher` searches a finite space and never repeats a configuration. It starts
with the configurations that ranked best on the *other* targets of a benchmark held in MLflow
(:class:`WarmStartPrior`, leave-target-out by construction) and, as results come in, reweights
those other (source, target) tasks by how well their logged ``val_loss`` ranking agrees with the
ranking observed so far on this task (a posterior over "which logged task is this one like"),
then proposes the untried configuration with the best weighted prior rank. Without adaptivity it
is the plain prior order (registry name ``prior``).

The benchmark is the grid of the thesis' transfer experiments (``seeds/004_43f54b618356cecf.txt``,
sec. 6.4.2: lr x weight decay x momentum x batch size per (source, target)). The searcher itself
is medxfer's own; no paper describes it.

Also here: :class:`ConfigKeyPrior` (the prior under a sweep's dotted config keys) and
:func:`load_prior`, which builds the prior of a sweep from its ``search.warmstart`` section.
The registry (:mod:`medxfer.tune.searchers`) builds the searcher through :func:`build`.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError

if TYPE_CHECKING:
    from medxfer.tune.search_config import SearchConfig
    from medxfer.tune.searchers import SearchRequest, SearchSetup

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


def param_key(v: Any) -> Any:
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
            values = sorted({param_key(c[p]) for c in configs}, key=lambda x: (str(type(x)), x))
            ranks[p] = {v: i for i, v in enumerate(values)}
    return [tuple(("#", ranks[p][param_key(c[p])]) if p in ranks else param_key(c[p])
                  for p in params) for c in configs]


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


def space_values(space: dict) -> dict[str, list]:
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
            raise MedxferInputError(f"search space {k!r}: expected a finite leaf (choice or "
                                    "grid), not a continuous distribution", field="space")
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
        values = space_values(space)
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


def candidates_of(space: dict) -> list[dict]:
    """Every configuration of a finite Tune param space, in the cartesian order of its keys."""
    values = space_values(space)
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]


def build(space: dict, request: SearchRequest, *, adaptive: bool = True) -> SearchSetup:
    """The registry's factory (``warmstart``; ``prior`` with ``adaptive=False``).

    Args:
        space: a finite Tune param space (every leaf a ``tune.choice``).
        request: metric, mode, seed, ``num_samples`` (at most the space's size run) and the
            ``prior`` (a :class:`WarmStartPrior`, or a :class:`ConfigKeyPrior` for config keys).

    Returns:
        The searcher over the space's configurations, each proposed at most once.
    """
    from medxfer.tune.searchers import SearchSetup

    alg = WarmStartSearcher(metric=request.metric, mode=request.mode, prior=request.prior,
                            candidates=candidates_of(space), seed=request.seed,
                            adaptive=adaptive)
    return SearchSetup(alg, space, request.num_samples)


def build_prior_order(space: dict, request: SearchRequest) -> SearchSetup:
    """The registry's ``prior``: :func:`build` without adaptivity (the warm-start order only)."""
    return build(space, request, adaptive=False)


def load_prior(search: SearchConfig, space: dict, *, tracking_uri: str | None = None,
               target: str | None = None) -> ConfigKeyPrior:
    """The leave-target-out prior of a sweep, from its ``search.warmstart`` section.

    ``search.warmstart.target`` (else ``target``, the experiment's ``data.flag``) is left out;
    ``search.warmstart.tracking_uri`` (else ``tracking_uri``, the sweep's store) holds
    ``search.warmstart.benchmark``. Ranked by ``search.metric`` / ``search.mode``, which the
    benchmark must log (the searcher compares those ranks with the sweep's own results).

    Args:
        search: the validated ``search:`` section.
        space: the sweep's finite Tune param space (dotted config keys).
        tracking_uri: the sweep's tracking store.
        target: the experiment's ``data.flag``.

    Raises:
        MedxferInputError: naming ``search.warmstart.*``: no target, no such benchmark, no
            logged metric for another target, or none of the space's configurations logged.
    """
    from medxfer.tune.search_config import WarmStartConfig

    ws = search.warmstart or WarmStartConfig()
    target = ws.target or target
    if not target:
        raise MedxferInputError("search.warmstart.target: no target to leave out of the prior "
                                "(set it, or data.flag)")
    mapping = search.warmstart_params()
    try:
        prior = WarmStartPrior.from_mlflow(ws.tracking_uri or tracking_uri, ws.benchmark,
                                           exclude_target=target, benchmark=ws.benchmark_kind,
                                           params=tuple(mapping), metric=search.metric,
                                           mode=search.mode)
    except MedxferInputError as exc:
        raise MedxferInputError(f"search.warmstart.benchmark: {exc}") from None
    if not prior.tasks:
        raise MedxferInputError(
            f"search.warmstart.benchmark: {ws.benchmark or 'the benchmark'} has no logged "
            f"{search.metric} for any target but {target!r} (params "
            f"{', '.join(mapping)}); nothing to warm-start from")
    keyed = ConfigKeyPrior(prior, mapping)
    if np.isnan(keyed.matrix(candidates_of(space))).all():
        logged = {p: sorted({str(k[i]) for k in prior.keys}) for i, p in enumerate(prior.params)}
        raise MedxferInputError(
            "search.warmstart: the prior knows none of the space's configurations (values "
            "logged in the benchmark: " + "; ".join(f"{p} -> {mapping[p]}: {', '.join(v)}"
                                                    for p, v in logged.items()) + ")")
    return keyed
