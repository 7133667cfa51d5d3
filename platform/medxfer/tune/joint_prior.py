"""What the joint searcher believes about the sources before its first trial.

* :func:`normal_scores` / :func:`combine_scores`: scores as rank-based normal scores, so metrics
  on different scales combine (mean over metrics).
* :class:`SourcePrior`: how well each source transferred to a benchmark's *other* targets (its
  percentile by ground truth there); the thesis (seed ``004_43f54b618356cecf.txt`` sec. 6.5.1,
  Table 6.4) finds ImageNet a strong baseline that medical sources beat on 4 of 11 targets.
* :class:`JointPrior`: scores on the target + configuration prior + source prior + the source
  prior's weight, with the leave-target-out guard (:func:`check_leave_target_out`).
* :func:`calibrate_prior_weight`: the source prior's weight that would have picked the best
  sources on the other targets (leave-one-target-out choice of one weight).

Pure numpy / pandas: nothing here imports Ray or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.tune.warmstart import ConfigKeyPrior, WarmStartPrior

PRIOR_WEIGHT = 1.0   # when no other target's scores can calibrate it
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, math.inf)  # calibration candidates


def normal_scores(values: Sequence[float]) -> np.ndarray:
    """Rank-based normal scores ``Phi^-1((rank - 0.5) / n)`` of the finite values; NaN -> 0.

    Higher value, higher score; ties share the average rank; all equal -> all 0.
    """
    from scipy.stats import norm, rankdata

    x = np.asarray(values, dtype=float)
    out = np.zeros(len(x))
    ok = np.isfinite(x)
    if ok.sum() >= 2:
        r = rankdata(x[ok])
        out[ok] = norm.ppf((r - 0.5) / ok.sum())
    return out


def combine_scores(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Sources x targets mean of the metrics' per-target normal scores (higher is better).

    Args:
        tables: metric -> sources x targets scores (higher is better), e.g. from
            ``estimate evaluate --scores`` files. A missing score is NaN and counts as the
            middle of the ranking for that metric.

    Returns:
        sources x targets table over the union of sources and targets of ``tables``.
    """
    if not tables:
        raise MedxferInputError("no score tables to combine", field="scores")
    rows = sorted(set().union(*(t.index for t in tables.values())))
    cols = sorted(set().union(*(t.columns for t in tables.values())))
    total = pd.DataFrame(0.0, index=pd.Index(rows, name="source"), columns=cols)
    for table in tables.values():
        t = table.reindex(index=rows, columns=cols).astype(float)
        for c in cols:
            total[c] += normal_scores(t[c].to_numpy())
    return total / len(tables)


@dataclass(frozen=True)
class SourcePrior:
    """How well each source transferred to a benchmark's other targets (never to ``target``).

    ``values[s]``: mean over the other targets of the source's percentile rank (1 = best) by
    ground truth there. ``targets``: the targets it was computed from.
    """

    values: Mapping[str, float]
    excluded_target: str | None
    targets: tuple[str, ...]

    @classmethod
    def from_selected(cls, selected: pd.DataFrame, *, exclude_target: str | None,
                      mode: str = "max") -> SourcePrior:
        """From :func:`medxfer.tracking.query.selected_runs` rows (``row``, ``target``,
        ``value``); rows of ``exclude_target`` are dropped first. ``mode``: whether a higher
        ``value`` (test AUC) is better."""
        df = selected if exclude_target is None else selected[selected["target"] != exclude_target]
        if df.empty:
            return cls({}, exclude_target, ())
        table = df.pivot(index="row", columns="target", values="value").astype(float)
        ranks = table.rank(pct=True, ascending=mode == "max")
        return cls({str(s): float(v) for s, v in ranks.mean(axis=1).items()}, exclude_target,
                   tuple(sorted(map(str, table.columns))))


@dataclass(frozen=True)
class JointPrior:
    """Everything the joint searcher knows about ``target`` before its first trial.

    Args:
        target: the target searched; the priors must have been computed without its runs.
        scores: source -> transferability score on ``target`` (higher is better).
        configs: the leave-target-out warm-start prior over configurations.
        sources: the leave-target-out source prior (None: scores only).
        prior_weight: weight of the source prior's normal scores against the scores'.

    Raises:
        MedxferInputError: a prior that holds runs of ``target`` (the leave-target-out guard).
    """

    target: str | None
    scores: Mapping[str, float] = field(default_factory=dict)
    configs: WarmStartPrior | ConfigKeyPrior | None = None
    sources: SourcePrior | None = None
    prior_weight: float = PRIOR_WEIGHT

    def __post_init__(self):
        check_leave_target_out(self.target, self.configs, self.sources)

    def belief(self, sources: Sequence[str]) -> np.ndarray:
        """``q(s)`` for ``sources``: normal scores of the score ranks (+ weighted source prior)."""
        z = normal_scores([self.scores.get(s, math.nan) for s in sources])
        if self.sources is None or not self.prior_weight:
            return z
        return weighted_belief(z, normal_scores([self.sources.values.get(s, math.nan)
                                                 for s in sources]), self.prior_weight)


def weighted_belief(z_scores: np.ndarray, z_prior: np.ndarray, weight: float) -> np.ndarray:
    """``z_scores + weight * z_prior``; ``weight = inf``: the prior, scores only break ties."""
    if math.isinf(weight):
        return z_prior + 1e-6 * z_scores
    return z_scores + weight * z_prior


def calibrate_prior_weight(target: str, scores: pd.DataFrame, selected: pd.DataFrame, *,
                           weights: Sequence[float] = PRIOR_WEIGHTS) -> float | None:
    """The source prior's weight that would have chosen the best sources on the *other* targets.

    For every other target ``t`` with scores and a ground truth: the source prior computed
    without ``target`` and ``t``, the belief at each weight, and the regret of its best-believed
    source (best ground truth on ``t`` minus that source's). Returns the weight with the lowest
    mean regret (the smallest on ties: scores first), or None when no other target has both.
    Leave-target-out: only other targets' ground truth is read; ``target``'s never.

    Args:
        scores: sources x targets transferability scores (higher is better).
        selected: :func:`medxfer.tracking.query.selected_runs` rows (``row``, ``target``,
            ``value``).
    """
    others = selected[selected["target"] != target]
    regrets = np.zeros(len(weights))
    n = 0
    for t in scores.columns:
        truth = others[others["target"] == t].set_index("row")["value"].astype(float)
        col = scores[t].astype(float)
        srcs = [s for s in truth.index if s != t and s in col.index and math.isfinite(col[s])]
        if t == target or len(srcs) < 2:
            continue
        prior = SourcePrior.from_selected(others, exclude_target=t)
        z = normal_scores(col[srcs].to_numpy())
        zp = normal_scores([prior.values.get(s, math.nan) for s in srcs])
        g = truth[srcs].to_numpy()
        for i, w in enumerate(weights):
            regrets[i] += g.max() - g[int(np.argmax(weighted_belief(z, zp, w)))]
        n += 1
    return float(weights[int(np.argmin(regrets))]) if n else None


def check_leave_target_out(target: str | None, configs=None, sources=None) -> None:
    """Raise unless neither prior holds runs of ``target``.

    A prior is accepted when it was computed leaving ``target`` out and none of its logged
    tasks (configs) or targets (sources) is ``target``.
    """
    if target is None:
        return
    if configs is not None:
        own = [t for t in configs.tasks if t[1] == target]
        if configs.excluded_target != target or own:
            raise MedxferInputError(
                f"the configuration prior of target {target!r} was computed with "
                f"exclude_target={configs.excluded_target!r}"
                + (f" and holds its own runs ({len(own)} tasks, e.g. {own[0]})" if own else "")
                + f"; compute it with exclude_target={target!r} (leave-target-out)",
                field="prior")
    if sources is not None and (sources.excluded_target != target or target in sources.targets):
        raise MedxferInputError(
            f"the source prior of target {target!r} was computed with exclude_target="
            f"{sources.excluded_target!r}" + (" from its own runs" if target in sources.targets
                                              else "")
            + f"; compute it with exclude_target={target!r} (leave-target-out)", field="prior")
