"""The warm-start searcher: a Ray Tune ``Searcher`` with a leave-target-out prior from MLflow.

:class:`WarmStartSearcher` searches a finite space and never repeats a configuration. It starts
with the configurations that were acceptable picks on most of the *other* targets' tasks of a
benchmark held in MLflow (:class:`WarmStartPrior`, leave-target-out by construction) and, as
results come in, reweights those other (source, target) tasks by how well their logged
``val_loss`` ranking agrees with the ranking observed so far near this task's best results (a
posterior over "which logged task is this one like"), then proposes the untried configuration
that the weighted tasks most often accepted. Without adaptivity it is the plain prior order
(registry name ``prior``).

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
#: How many times more a logged task of the searched row (the same source model) weighs than a
#: task of another row: a source pre-trained on natural images wants other learning rates than
#: one pre-trained on MedMNIST (measured on the dataset benchmark; see WarmStartSearcher).
SAME_ROW = 1000.0
CONFIDENCE = 0.75
#: Every LOCAL_EVERY-th proposal stays within LOCAL_STEPS grid steps of the best result so far
#: (WarmStartSearcher: the near-ties of the best configuration are where the argmin hides).
LOCAL_EVERY = 3
LOCAL_STEPS = 2
#: A logged configuration is "acceptable" on its task (a pick the replay would count as found)
#: when its val-loss rank is in the top ACCEPT_TOP share of the task's grid and its test metric
#: is within ACCEPT_TOLERANCE of the task's selected run's (WarmStartSearcher).
ACCEPT_TOP = 0.05
ACCEPT_TOLERANCE = 0.005
#: Tasks are weighed by their agreement on the pairs that involve one of the AGREE_TOP best
#: results so far (TaskWeights): how a task orders two poor configurations says nothing about
#: where this task's best one is.
AGREE_TOP = 3
#: The weighted mean prior rank enters the score scaled by this, below the acceptable share:
#: it orders configurations of (nearly) equal share.
RANK_WEIGHT = 1e-3
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
    ``acceptable[j, k]``: 1 where configuration ``keys[k]`` is an acceptable pick on task
    ``tasks[j]`` (:meth:`from_runs`), 0 where not, NaN where unknown; None: not computed.
    """

    params: tuple[str, ...]
    ordinal: tuple[str, ...]
    tasks: list[tuple[str, str]]
    keys: list[tuple]
    ranks: np.ndarray
    excluded_target: str | None
    metric: str = "val_loss"
    mode: str = "min"
    acceptable: np.ndarray | None = None
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._index = {k: i for i, k in enumerate(self.keys)}

    @classmethod
    def from_runs(cls, runs: pd.DataFrame, *, exclude_target: str | None,
                  params: Sequence[str] = DEFAULT_PARAMS,
                  ordinal: Sequence[str] = DEFAULT_ORDINAL, metric: str = "val_loss",
                  mode: str = "min", test_metric: str = "test_auc",
                  top: float = ACCEPT_TOP, tolerance: float = ACCEPT_TOLERANCE
                  ) -> WarmStartPrior:
        """From :func:`medxfer.tracking.query.grid_runs` rows (``row``, ``target``, params,
        ``metric``, optionally ``test_metric``). Rows of ``exclude_target`` are dropped first:
        the prior of a target never sees that target's runs. ``exclude_target=None`` keeps all
        (a target not in the log).

        ``acceptable``: a configuration whose ``metric`` rank is at most ``top`` and whose
        ``test_metric`` is within ``tolerance`` of the task's best-``metric`` run's (the pick
        the benchmark's ground truth makes); the rank condition alone where the test metric
        is not logged.
        """
        params, ordinal = tuple(params), tuple(p for p in ordinal if p in params)
        df = runs
        if exclude_target is not None:
            df = df[df["target"] != exclude_target]
        df = df.dropna(subset=[metric, *params])
        has_test = test_metric in df.columns and test_metric != metric
        tasks, per_task = [], []
        for (row, target), g in df.groupby(["row", "target"], sort=True):
            g = g.sort_values([metric, "run_id"] if "run_id" in g else [metric],
                              ascending=mode == "min")
            cfgs = g[list(params)].to_dict("records")
            keys = feature_keys(cfgs, params, ordinal)
            tests = (g[test_metric].to_numpy(dtype=float) if has_test
                     else np.full(len(g), np.nan))
            # A configuration logged twice (reruns) counts once, by its best run.
            first = {}
            for k, v, t in zip(keys, g[metric].to_numpy(dtype=float), tests):
                first.setdefault(k, (v, t))
            tasks.append((row, target))
            per_task.append(first)
        all_keys = sorted({k for d in per_task for k in d}, key=repr)
        index = {k: i for i, k in enumerate(all_keys)}
        ranks = np.full((len(tasks), len(all_keys)), np.nan)
        acceptable = np.full_like(ranks, np.nan)
        for j, d in enumerate(per_task):
            cols = [index[k] for k in d]
            r = _rank01(np.array([v for v, _ in d.values()]), mode)
            t = np.array([t for _, t in d.values()])
            near = np.abs(t - t[0]) <= tolerance + 1e-12  # t[0]: the best run's
            ranks[j, cols] = r
            acceptable[j, cols] = (r <= top + 1e-12) & (near | np.isnan(t))
        return cls(params, ordinal, tasks, all_keys, ranks, exclude_target, metric, mode,
                   acceptable)

    @classmethod
    def from_mlflow(cls, tracking_uri: str | None = None, name: str | None = None, *,
                    exclude_target: str | None, benchmark: str = "dataset",
                    params: Sequence[str] = DEFAULT_PARAMS,
                    ordinal: Sequence[str] = DEFAULT_ORDINAL, metric: str = "val_loss",
                    mode: str = "min", test_metric: str = "test_auc") -> WarmStartPrior:
        """The prior of a sweep on ``exclude_target`` from a benchmark held in MLflow."""
        from medxfer.tracking.query import grid_runs

        runs = grid_runs(tracking_uri, name, benchmark=benchmark, params=tuple(params),
                         metrics=(metric, test_metric))
        return cls.from_runs(runs, exclude_target=exclude_target, params=params,
                             ordinal=ordinal, metric=metric, mode=mode,
                             test_metric=test_metric)

    def matrix(self, configs: Sequence[dict]) -> np.ndarray:
        """``ranks`` restricted to ``configs``: tasks x len(configs), NaN where unknown."""
        return self._restrict(self.ranks, configs)

    def acceptable_matrix(self, configs: Sequence[dict]) -> np.ndarray | None:
        """``acceptable`` restricted to ``configs`` (as :meth:`matrix`); None if not computed."""
        return None if self.acceptable is None else self._restrict(self.acceptable, configs)

    def _restrict(self, m: np.ndarray, configs: Sequence[dict]) -> np.ndarray:
        cols = [self._index.get(k) for k in feature_keys(configs, self.params, self.ordinal)]
        out = np.full((len(self.tasks), len(configs)), np.nan)
        for c, i in enumerate(cols):
            if i is not None:
                out[:, c] = m[:, i]
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
    :meth:`matrix` and :meth:`acceptable_matrix`, so the searcher itself is unchanged and
    keeps proposing config-keyed dicts;
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

    def acceptable_matrix(self, configs: Sequence[dict]) -> np.ndarray | None:
        return self.prior.acceptable_matrix([self.to_prior(c) for c in configs])

    def order(self, configs: Sequence[dict]) -> list[int]:
        return WarmStartSearcher(prior=self, candidates=list(configs), adaptive=False,
                                 metric=self.prior.metric, mode=self.prior.mode)._ranked()


class TaskWeights:
    """A prior's logged tasks, weighted by how well each agrees with the results so far.

    ``R[j, c]``: prior rank in [0, 1] (0 = best, NaN = unknown) of configuration ``c`` on
    logged task ``j``. Every observed pair of results (of the same ``group``: the joint
    searcher's sources, whose values are not comparable across sources) adds +1 to a task's
    agreement where the task orders the pair as observed and -1 where not; a task weighs
    ``base[j] * (confidence / (1 - confidence)) ** agreement`` (a posterior over "which logged
    task is this one like", each task assumed to order a pair correctly with probability
    ``confidence``). With ``top`` set, only the pairs that involve one of the ``top`` best
    results of their group so far count (recounted as the best results change): whether a task
    is like this one near its best configurations, not among its poor ones.
    :meth:`scores` is the weighted mean prior rank of every configuration.
    Used by :class:`WarmStartSearcher` and :class:`~medxfer.tune.joint.JointSearcher`.
    """

    def __init__(self, R: np.ndarray, *, confidence: float = CONFIDENCE,
                 top: int | None = None):
        self.R = np.asarray(R, dtype=float)
        self._known = ~np.isnan(self.R)
        self._R0 = np.nan_to_num(self.R)
        self._logit = math.log(confidence / (1 - confidence))
        self.top = top
        self.agreement = np.zeros(self.R.shape[0])
        self._seen: dict = {}  # group -> [(config, value)]
        self._by_group: dict = {}  # group -> its agreement (with ``top``: recounted)

    @property
    def n_tasks(self) -> int:
        return self.R.shape[0]

    def observe(self, config: int, value: float, group=None) -> None:
        """Record ``value`` (lower is better) of ``config``; non-finite values are ignored."""
        if not math.isfinite(value):
            return
        seen = self._seen.setdefault(group, [])
        if self.top is None:
            if seen and self.n_tasks:
                self.agreement += self._net(config, value, seen)
            seen.append((config, value))
            return
        seen.append((config, value))
        order = sorted(range(len(seen)), key=lambda i: seen[i][1])  # stable: earliest first
        count = np.zeros(self.n_tasks)
        for n, i in enumerate(order[:self.top]):
            # i against every other result, except the better top ones (their pair is counted)
            others = [seen[k] for k in order[n + 1:]]
            if others:
                count += self._net(*seen[i], others)
        self.agreement += count - self._by_group.get(group, 0.0)
        self._by_group[group] = count

    def _net(self, config: int, value: float, others: list) -> np.ndarray:
        """Per task: pairs (config, other) it orders as observed minus pairs it reverses."""
        dy = np.sign(value - np.array([v for _, v in others]))
        dr = np.nan_to_num(np.sign(self.R[:, [config]] - self.R[:, [k for k, _ in others]]))
        return ((dr * dy) > 0).sum(axis=1) - ((dr * dy) < 0).sum(axis=1)

    def weights(self, base: np.ndarray | None = None) -> np.ndarray:
        """Per task: ``base`` (default 1) times the agreement factor, max-normalised."""
        logw = self._logit * self.agreement
        w = np.exp(logw - logw.max()) if self.n_tasks else np.zeros(0)
        return w if base is None else w * base

    def scores(self, base: np.ndarray | None = None) -> np.ndarray:
        """Weighted mean prior rank of every configuration (0 = best); 0.5 where no task with
        weight knows it (the middle of the pack)."""
        if not self.n_tasks:
            return np.zeros(self.R.shape[1])
        w = self.weights(base)
        num = (self._R0 * w[:, None]).sum(axis=0)
        den = (self._known * w[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        return np.where(den > 0, out, 0.5)


def grid_levels(configs: Sequence[dict]) -> np.ndarray:
    """``configs`` x params matrix of each value's position among its param's values: numbers
    in ascending order, other values in order of first appearance. One grid step = one level
    of one param."""
    names = list(configs[0]) if configs else []
    out = np.zeros((len(configs), len(names)), dtype=int)
    for j, name in enumerate(names):
        values = list(dict.fromkeys(param_key(c[name]) for c in configs))
        if all(isinstance(v, float) for v in values):
            values = sorted(values)
        index = {v: i for i, v in enumerate(values)}
        out[:, j] = [index[param_key(c[name])] for c in configs]
    return out


def row_weights(rows: Sequence[str], row: str | None, same_row: float = SAME_ROW) -> np.ndarray:
    """``same_row`` for the tasks of ``row`` (a prior's task rows), 1 for the others."""
    return np.array([same_row if row is not None and r == row else 1.0 for r in rows])


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


class PicklingSearcher(Searcher):
    """A Tune searcher whose whole state is its attributes: Tune checkpoints it (to resume a
    sweep) by pickling them."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))


class WarmStartSearcher(PicklingSearcher):
    """Prior-ranked, adaptively reweighted search over a finite set of configurations.

    ``candidates``: the configurations (dicts); default the cartesian product of the param
    space Tune passes to :meth:`set_search_properties` (or of ``space``). Each candidate is
    proposed at most once; :meth:`suggest` returns ``Searcher.FINISHED`` when all were.
    ``prior``: a :class:`WarmStartPrior`, or a :class:`ConfigKeyPrior` when the candidates are
    keyed by config paths (None: candidates in the given order, then adaptive
    ranking has nothing to weigh). ``seed`` breaks ties. ``confidence``: the assumed
    probability that a logged task orders a pair of configurations as this task does; it sets
    how fast the weights concentrate on the tasks that agree with the observations
    (:class:`TaskWeights`). ``row``: the benchmark row searched (the source model; the arch on
    the architecture benchmark): the prior's tasks of that row weigh ``same_row`` times more.
    Scores (:meth:`_scores`): the search is done once the lowest val loss so far belongs to a
    configuration within 0.005 test AUC of the pair's ground truth, so a candidate is scored
    by the weighted share of logged tasks on which it would have been such a pick (the prior's
    ``acceptable``: top :data:`ACCEPT_TOP` of that task's val losses and test AUC within
    :data:`ACCEPT_TOLERANCE` of that task's pick), not by its mean rank: a configuration that
    is the best on some tasks and poor on others beats one that is middling everywhere. (Of
    the dataset pairs that needed more than 15 trials by mean rank, the best configuration
    was nearly always the best of some other logged task, yet middling on average.)
    The weighted mean rank (x :data:`RANK_WEIGHT`) orders candidates of equal share.
    ``agree_top``: tasks are weighed by agreement on the pairs that involve one of the
    ``agree_top`` best results so far (:class:`TaskWeights`); over all pairs, the many pairs
    of poor configurations (an lr that diverged vs. one that stalled) swamp the few that
    tell where the best is.
    Every ``local_every``-th proposal (adaptive only) is the best-ranked untried candidate
    within ``local_steps`` grid steps (:func:`grid_levels`) of the best result so far: the
    ground truth is the lowest val loss of the grid, and its near-ties (e.g. another weight
    decay at the same learning rate) are often as close in val loss as the noise, so the
    prior cannot rank them and the search has to visit them.

    Measured with ``medxfer benchmark replay --searcher warmstart --seeds 5`` (trials until
    the selected configuration is within 0.005 test AUC of the pair's ground truth; median /
    p90 / mean): dataset benchmark 3 / 24 / 9.2 with all tasks weighed alike, 2 / 19 with
    ``same_row``, 2 / 17 / 7.5 with the local steps as well, 2 / 14 / 5.4 with the acceptable
    share and ``agree_top``; architecture benchmark 2 / 29.8, 1 / 20.6, 1 / 16 / 5.5,
    1 / 15.6 / 5.2. All constants were chosen on these two benchmarks, so the figures are not
    held out. The p90 rests on a handful of pairs (seeds only break ties): changing one
    setting at a time (``agree_top`` 2-4, :data:`ACCEPT_TOP` 0.03-0.1, confidence 0.7-0.8,
    ``same_row`` 100-10,000, ``local_every`` 2-4) the dataset p90 is 14-15 in 8 of 11 and
    17-22 for ``agree_top`` 2 and :data:`ACCEPT_TOP` 0.03 and 0.1; a bootstrap over pairs puts
    the 90 % interval of its p90 at 10-17 (before: 14-24).
    """

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, *, prior: WarmStartPrior | None = None,
                 candidates: list[dict] | None = None, seed: int | None = None,
                 adaptive: bool = True, confidence: float = CONFIDENCE,
                 row: str | None = None, same_row: float = SAME_ROW,
                 local_every: int = LOCAL_EVERY, local_steps: int = LOCAL_STEPS,
                 agree_top: int | None = AGREE_TOP):
        super().__init__(metric=metric, mode=mode)
        self._prior = prior
        self._space = space
        self._candidates: list[dict] | None = [dict(c) for c in candidates] if candidates else None
        self._seed = seed
        self._adaptive = adaptive
        self._confidence = confidence
        self._row, self._same_row = row, same_row
        self._local_every, self._local_steps = local_every, local_steps
        self._agree_top = agree_top
        self._tried: list[int] = []              # candidate indices, in proposal order
        self._values: dict[int, float] = {}      # candidate index -> observed metric (NaN: failed)
        self._live: dict[str, int] = {}          # trial id -> candidate index
        self._tasks: TaskWeights | None = None
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
        if self._adaptive:
            self._tasks.observe(idx, value if self._mode != "max" else -value)

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
        rows: list[str] = []
        self._accept: np.ndarray | None = None
        if self._prior is not None:
            R = self._prior.matrix(self._candidates)
            keep = ~np.all(np.isnan(R), axis=1)  # tasks that know none of ours: drop
            R = R[keep]
            rows = [t[0] for t, k in zip(self._prior.tasks, keep) if k]
            accept = getattr(self._prior, "acceptable_matrix", lambda c: None)(self._candidates)
            if accept is not None:
                self._accept = accept[keep]
        else:
            R = np.zeros((0, n))
        self._tasks = TaskWeights(R, confidence=self._confidence,
                                  top=self._agree_top if self._adaptive else None)
        self._base = row_weights(rows, self._row, self._same_row)
        self._levels = grid_levels(self._candidates)

    def _scores(self) -> np.ndarray:
        """Lower is better: the weighted share of tasks on which a candidate is *not* an
        acceptable pick, plus RANK_WEIGHT x its weighted mean prior rank; the mean rank alone
        where the prior has no acceptable matrix."""
        rank = self._tasks.scores(self._base)
        if self._accept is None or not self._tasks.n_tasks:
            return rank
        w = self._tasks.weights(self._base)
        known = ~np.isnan(self._accept)
        num = (np.nan_to_num(1.0 - self._accept) * w[:, None]).sum(axis=0)
        den = (known * w[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            miss = np.where(den > 0, num / den, 1.0)
        return miss + RANK_WEIGHT * rank

    def _ranked(self) -> list[int]:
        s = self._scores()
        return list(np.lexsort((self._tiebreak, s)))

    def _next(self) -> int:
        tried = np.zeros(len(self._candidates), dtype=bool)
        tried[self._tried] = True
        s = np.where(tried, np.inf, self._scores())
        near = self._near_incumbent(tried)
        if near is not None:
            s = np.where(near, s, np.inf)
        return int(np.lexsort((self._tiebreak, s))[0])

    def _near_incumbent(self, tried: np.ndarray) -> np.ndarray | None:
        """On every ``local_every``-th proposal: the untried candidates within ``local_steps``
        grid steps of the best result so far (None: not this time, or none left)."""
        if not (self._adaptive and self._local_every) or (len(self._tried) + 1) % self._local_every:
            return None
        best, incumbent = math.inf, None
        for i in self._tried:  # the earliest of equal results
            y = self._values.get(i, math.nan) * (-1 if self._mode == "max" else 1)
            if y < best:
                best, incumbent = y, i
        if incumbent is None:
            return None
        steps = np.abs(self._levels - self._levels[incumbent]).sum(axis=1)
        near = (steps >= 1) & (steps <= self._local_steps) & ~tried
        return near if near.any() else None


def candidates_of(space: dict) -> list[dict]:
    """Every configuration of a finite Tune param space, in the cartesian order of its keys."""
    values = space_values(space)
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]


def build(space: dict, request: SearchRequest, *, adaptive: bool = True) -> SearchSetup:
    """The registry's factory (``warmstart``; ``prior`` with ``adaptive=False``).

    Args:
        space: a finite Tune param space (every leaf a ``tune.choice``).
        request: metric, mode, seed, ``num_samples`` (at most the space's size run), the
            ``prior`` (a :class:`WarmStartPrior`, or a :class:`ConfigKeyPrior` for config keys)
            and the ``row`` searched (its tasks weigh :data:`SAME_ROW` times more).

    Returns:
        The searcher over the space's configurations, each proposed at most once.
    """
    from medxfer.tune.searchers import SearchSetup

    alg = WarmStartSearcher(metric=request.metric, mode=request.mode, prior=request.prior,
                            candidates=candidates_of(space), seed=request.seed,
                            adaptive=adaptive, row=request.row)
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
