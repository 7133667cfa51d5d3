"""``joint``: a Ray Tune ``Searcher`` over (source model, hyperparameters) together.

A researcher with a new target has a zoo of candidate sources and a grid of fine-tuning
configurations per source. The joint searcher spends a training budget across both, using what
is known before the first trial and what the trials return:

* **Source belief** ``q(s)`` (:class:`~medxfer.tune.joint_prior.JointPrior`): normal scores
  of the sources' ranks by their transferability scores on the target (any registered metric
  or a combination, :func:`~medxfer.tune.joint_prior.combine_scores`), plus ``prior_weight``
  times normal scores of their ranks in a leave-target-out *source prior*
  (:class:`~medxfer.tune.joint_prior.SourcePrior`: how well each source transferred to the
  benchmark's other targets; the thesis, sec. 6.5.1 and Table 6.4: ImageNet "remains a strong
  baseline", medical sources win on 4 of 11 targets). Ranks, not values, so metrics on
  different scales combine. The weight is calibrated per target on the *other* targets
  (:func:`~medxfer.tune.joint_prior.calibrate_prior_weight`): the weight whose best-believed
  source would have been best there, so a metric that misjudged the other targets' sources is
  trusted less.
* **Exploration**: the ``explore`` sources with the highest belief are trained round-robin
  (the least-tried first; ties by belief); a source whose grid is exhausted is replaced by the
  next by belief.
* **Configurations within a source**: the warm-start weighting of
  :class:`~medxfer.tune.warmstart.TaskWeights` (mean prior rank of each configuration on the
  benchmark's other (source, target) tasks, reweighted by agreement with the val losses
  observed so far on this target, pooled over sources), the logged tasks *of the same source*
  weighing ``same_source`` times more, as :class:`~medxfer.tune.warmstart.WarmStartSearcher`
  weighs its row's: a source pre-trained on natural images wants other learning rates than one
  pre-trained on MedMNIST (on the dataset benchmark this cut the mean gap to the pair's ground
  truth after 3 configurations from 0.015 to 0.005 test AUC). The warm-start searcher's local
  steps near the best result are not used here (not measured with the joint searcher).
* **Final pick** (:func:`select`): the source with the highest posterior
  ``q(s) - evidence * log(best_s / best)`` (``best_s``: the source's best ``metric`` so far,
  ``best``: the best over sources; a log ratio, so the weight does not depend on the loss's
  scale), then that source's trial with the best ``metric`` — the ground-truth rule of the
  benchmark within one source. Val metrics separate sources weakly (keeping the lowest val loss
  of all 1,680 runs per target misses the best source on 4 of 11 targets), so the belief
  decides where the val evidence is close.

Where the pieces come from. Ranking source models by a transferability score before any
fine-tuning is the problem of the thesis, seed ``004_43f54b618356cecf.txt`` sec. 6.3.1; its
benchmark (sec. 6.4.2: a grid over lr, wd, momentum and batch size per (source, target), ground
truth = test AUC of the lowest-val-loss run) is what ``benchmark replay --joint`` replays. The
within-source order is the project's warm-start searcher (logged tasks weighted by how well
their configuration ranking agrees with the observed one, as in Wistuba, Schilling &
Schmidt-Thieme, "Two-stage transfer surrogate model for automatic hyperparameter optimization",
ECML-PKDD 2016).

Variants measured during development on the dataset benchmark and dropped (with the
source-agnostic warm-start order of the time): successive halving over sources (Jamieson &
Talwalkar, AISTATS 2016, https://arxiv.org/abs/1502.07943) and giving each next trial to the
posterior leader; both compare sources tried on different numbers of configurations and did
worse than a fixed round-robin. The defaults (``explore`` 3, ``evidence`` 10, the weight grid
``joint_prior.PRIOR_WEIGHTS``) were chosen on generated scores at three noise levels (other
score seeds than those ``benchmarks/joint_replay.py`` reports), never on the published score
files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medxfer.errors import MedxferInputError
from medxfer.tune.joint_prior import JointPrior
from medxfer.tune.warmstart import (CONFIDENCE, SAME_ROW, ConfigKeyPrior, PicklingSearcher,
                                    TaskWeights, WarmStartPrior, row_weights, space_values)

if TYPE_CHECKING:
    from medxfer.tune.searchers import SearchRequest, SearchSetup


SOURCE_KEY = "source"
# Defaults chosen on the dataset benchmark with generated scores (module docstring).
EXPLORE = 3
EVIDENCE = 10.0
SAME_SOURCE = SAME_ROW


def _evidence(best: np.ndarray, mode: str) -> np.ndarray:
    """How far each source's best value is behind the best one: log ratio where every value is
    positive, else the difference relative to the best's magnitude. 0 = the best source."""
    b = best if mode == "min" else -best
    if mode == "min" and np.all(best > 0):
        e = np.log(best) - np.log(best.min())
    else:
        e = (b - b.min()) / max(abs(float(best[np.argmin(b)])), 1e-12)
    return e


def select(sources: Sequence[str], values: Sequence[float], belief: Mapping[str, float], *,
           mode: str = "min", evidence: float = EVIDENCE) -> int | None:
    """The index of the trial to keep (``None`` if no trial has a finite value).

    Args:
        sources: the source of each trial.
        values: each trial's ``metric`` (NaN: failed).
        belief: ``q(s)`` of every source in ``sources``.
        mode: ``min`` or ``max`` of ``values``.
        evidence: weight of the val evidence against the belief (0: belief only; large: the
            best ``metric`` across sources).

    Returns:
        Index into ``sources`` / ``values``: the best trial of the source with the highest
        ``q(s) - evidence * e(s)`` (:func:`_evidence`); ties keep the earlier trial.
    """
    v = np.asarray(values, dtype=float)
    sign = 1.0 if mode == "min" else -1.0
    best: dict[str, int] = {}
    for i, (s, x) in enumerate(zip(sources, v)):
        if np.isfinite(x) and (s not in best or sign * x < sign * v[best[s]]):
            best[s] = i
    if not best:
        return None
    names = list(best)
    e = _evidence(np.array([v[best[s]] for s in names]), mode)
    post = np.array([belief[s] for s in names]) - evidence * e
    return best[names[int(np.argmax(post))]]


class JointSearcher(PicklingSearcher):
    """Source x configuration search with a transferability belief and a warm-start prior.

    The param space (Tune's ``param_space`` or ``space``) has a ``source_key`` dimension (a
    choice of source names) and finite dimensions for the configuration; every (source,
    configuration) is proposed at most once, then ``Searcher.FINISHED``. Without a
    ``source_key`` dimension there is one unnamed source (the warm-start search alone).
    ``prior``: a :class:`JointPrior`, or a configuration prior alone (a
    :class:`~medxfer.tune.warmstart.WarmStartPrior` or ``ConfigKeyPrior``: no scores); None:
    sources in the given order, configurations in grid order. ``source_overrides``: per
    source, config keys added to each of its proposals (a zoo sweep: the entry's weights,
    backbone, ...). :meth:`selected` is the final pick (:func:`select`).
    """

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, *,
                 prior: JointPrior | WarmStartPrior | ConfigKeyPrior | None = None,
                 source_key: str = SOURCE_KEY,
                 source_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 explore: int = EXPLORE,
                 evidence: float = EVIDENCE, same_source: float = SAME_SOURCE,
                 confidence: float = CONFIDENCE, seed: int | None = None):
        super().__init__(metric=metric, mode=mode)
        if explore < 1:
            raise MedxferInputError(f"explore {explore}: expected >= 1", field="explore")
        if prior is not None and not isinstance(prior, JointPrior):
            prior = JointPrior(prior.excluded_target, configs=prior)
        self._prior = prior or JointPrior(None)
        self._key = source_key
        self._overrides = {str(k): dict(v) for k, v in (source_overrides or {}).items()}
        self._explore, self._evidence, self._same = explore, evidence, same_source
        self._confidence = confidence
        self._seed = seed
        self.trials: list[dict] = []          # per proposal: source, config index, value
        self._live: dict[str, int] = {}       # trial id -> index into trials
        self._ready = False
        if space:
            self._setup(space)

    # --- Tune API ---------------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self.trials:
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if config and not self._ready:
            self._setup(config)
        return True

    def suggest(self, trial_id: str):
        if not self._ready:
            return None
        src = self._next_source()
        if src is None:
            return self.FINISHED
        c = self._next_config(src)
        self._tried[src][c] = True
        self._live[trial_id] = len(self.trials)
        self.trials.append({"source": self.sources[src], "config": c, "value": math.nan,
                            "result": None})
        name = self.sources[src]
        named = {} if name is None else {**self._overrides.get(name, {}), self._key: name}
        return {**named, **self.configs[c]}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        i = self._live.pop(trial_id, None)
        if i is None:
            return
        value = math.nan
        if not error and result and result.get(self._metric) is not None:
            value = float(result[self._metric])
        trial = self.trials[i]
        trial["value"], trial["result"] = value, (None if error else dict(result or {}))
        if math.isfinite(value):
            # Results are compared within a source: sources differ in level, not only order.
            y = value if (self._mode or "min") == "min" else -value
            self._tasks.observe(trial["config"], y, group=self.sources.index(trial["source"]))

    # --- the final pick ---------------------------------------------------------------------
    def selected(self) -> dict | None:
        """The trial to keep: ``{"source", "config", "result", "index"}`` (None: no result)."""
        q = dict(zip(self.sources, self._belief))
        i = select([t["source"] for t in self.trials], [t["value"] for t in self.trials], q,
                   mode=self._mode or "min", evidence=self._evidence)
        if i is None:
            return None
        t = self.trials[i]
        return {"source": t["source"], "config": dict(self.configs[t["config"]]),
                "result": t["result"], "index": i}

    # --- internals --------------------------------------------------------------------------
    def _setup(self, space: dict) -> None:
        values = space_values(space)
        self.sources = ([str(s) for s in values.pop(self._key)] if self._key in values
                        else [None])
        names = list(values)
        self.configs = [dict(zip(names, combo))
                        for combo in itertools.product(*(values[n] for n in names))]
        n, S = len(self.configs), len(self.sources)
        rng = np.random.default_rng(self._seed)
        self._tiebreak = rng.permutation(n) if self._seed is not None else np.arange(n)
        self._belief = self._prior.belief(self.sources)
        self._order = list(np.lexsort((np.arange(S), -self._belief)))  # belief, then given order
        self._tried = np.zeros((S, n), dtype=bool)
        self._setup_prior()
        self._ready = True

    def _setup_prior(self) -> None:
        cp = self._prior.configs
        rows: list[str] = []
        if cp is None:
            R = np.zeros((0, len(self.configs)))
        else:
            R = cp.matrix(self.configs)
            keep = ~np.all(np.isnan(R), axis=1)  # tasks that know none of ours
            R = R[keep]
            rows = [t[0] for t, k in zip(cp.tasks, keep) if k]
        self._tasks = TaskWeights(R, confidence=self._confidence)
        self._base = [row_weights(rows, s, self._same) for s in self.sources]

    def _scores(self, s: int) -> np.ndarray:
        """Weighted mean prior rank of every configuration for source ``s`` (0 = best)."""
        return self._tasks.scores(self._base[s])

    def _next_config(self, s: int) -> int:
        sc = np.where(self._tried[s], np.inf, self._scores(s))
        return int(np.lexsort((self._tiebreak, sc))[0])

    def _next_source(self) -> int | None:
        """The least-tried of the ``explore`` best-believed sources with untried configs."""
        open_ = [s for s in self._order if not self._tried[s].all()]
        if not open_:
            return None
        active = open_[:self._explore]
        counts = self._tried.sum(axis=1)
        return min(active, key=lambda s: (counts[s], active.index(s)))


def build(space: dict, request: SearchRequest) -> SearchSetup:
    """The registry's factory (``joint``): the searcher over a finite space with a ``source``
    dimension; ``request.prior`` is the target's :class:`JointPrior`."""
    from medxfer.tune.searchers import SearchSetup

    alg = JointSearcher(metric=request.metric, mode=request.mode, prior=request.prior,
                        seed=request.seed)
    return SearchSetup(alg, space, request.num_samples)
