"""Evaluate transferability scores against ground-truth transfer performance.

Per target and metric: weighted Kendall's tau (``scipy.stats.weightedtau`` with its defaults:
hyperbolic weigher, additive, averaged over both rankings) between the sources' scores and their
ground-truth test AUC, leaving out source == target. Then per-target ranks of the ranked methods
(1 = best, an undefined tau ranks last, ties share the average rank), average ranks, the Friedman
test over targets and the Nemenyi critical difference (Demsar 2006, JMLR 7:1-30).

The rules follow the thesis' Tables 6.2 / 6.3 (seed 004, chapter 6) and the last section of
``shared/specs/transferability-metrics.md``: seven ranked methods (LogME, PARC, SFDA, NCTI, LEEP,
NLEEP and the LP x FU product); LP and FU alone are reported but not ranked; ``invert`` uses
1 - score (eq. 6.8 for ``lp_fu``). Pure functions on DataFrames: nothing here reads files or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.transferability.combine import combine

# Fixed column order of every output table (registry names, DESIGN.md raw flags).
METRIC_ORDER = ("logme", "leep", "nleep", "parc", "sfda", "ncti", "gbc", "lp", "fu", "lp_fu")
# The methods Tables 6.2 / 6.3 rank, in the thesis' column order.
THESIS_RANKED = ("logme", "parc", "sfda", "ncti", "leep", "nleep", "lp_fu")


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate`` computes.

    Attributes:
        taus: targets x metrics weighted tau (NaN = undefined), columns in ``METRIC_ORDER``.
        ranks: targets x ranked methods, 1 = best.
        average_ranks: mean rank per ranked method (Series, ranked-method order).
        friedman_chi2, friedman_p: Friedman test over targets (NaN if fewer than 3 methods
            or 2 targets).
        cd: Nemenyi critical difference at ``alpha`` for len(ranked) methods and len(targets).
        alpha: significance level of ``cd``.
        inverted: metrics scored as 1 - score (``lp_fu``: eq. 6.8).
        scores: the final per-metric sources x targets tables the taus were computed from
            (after combination and inversion), for figures.
    """

    taus: pd.DataFrame
    ranks: pd.DataFrame
    average_ranks: pd.Series
    friedman_chi2: float
    friedman_p: float
    cd: float
    alpha: float
    inverted: tuple[str, ...] = ()
    scores: Mapping[str, pd.DataFrame] = field(default_factory=dict)


def order_metrics(names: Iterable[str]) -> list[str]:
    """Sort metric names into ``METRIC_ORDER``; unknown names raise ``ValueError``."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in METRIC_ORDER]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(METRIC_ORDER)}")
    return [n for n in METRIC_ORDER if n in names]


def parse_metric_names(text: str | None, option: str) -> list[str]:
    """Metric names from a comma-separated user option (``"parc, lp_fu"`` -> ``["parc", "lp_fu"]``).

    Args:
        text: the option's value; None or empty gives ``[]``.
        option: the option's name as the user wrote it (``--invert``), for the error message.

    Raises:
        MedxferInputError: a name is not in ``METRIC_ORDER`` (the message lists the valid ones).
    """
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    try:
        order_metrics(names)
    except ValueError as exc:
        raise MedxferInputError(str(exc), field=option) from None
    return names


def prepare_scores(scores: Mapping[str, pd.DataFrame | Mapping[str, pd.DataFrame]], *,
                   invert: Iterable[str] = (), ncti_convention: str = "thesis"
                   ) -> dict[str, pd.DataFrame]:
    """Turn per-metric inputs into one final score table per reported metric.

    Args:
        scores: metric name -> sources x targets table. ``"ncti"`` may instead map to its raw
            terms ``{"seli", "ncc", "vc"}`` (combined by min-max normalisation across sources).
            ``"lp_fu"`` is computed from ``"lp"`` and ``"fu"`` when both are given and it is not.
        invert: metrics to score as 1 - score; ``lp_fu`` means eq. 6.8 instead.
        ncti_convention: ``"thesis"`` (adds vc) or ``"paper"`` (subtracts it).

    Returns:
        metric -> sources x targets table, in ``METRIC_ORDER``.
    """
    invert = set(invert)
    out: dict[str, pd.DataFrame] = {}
    for name, table in scores.items():
        if name == "ncti" and isinstance(table, Mapping):
            table = combine("ncti", table, convention=ncti_convention)
        elif not isinstance(table, pd.DataFrame):
            raise ValueError(f"scores[{name!r}]: expected a DataFrame")
        out[name] = table.astype(float)
    if "lp" in out and "fu" in out:
        if "lp_fu" in out:
            raise ValueError("lp_fu given both precomputed and as lp and fu: give one or the other")
        out["lp_fu"] = combine("lp_fu", {"lp": scores["lp"], "fu": scores["fu"]},
                               invert="lp_fu" in invert)
    elif "lp_fu" in invert:
        raise ValueError("inverting lp_fu (eq. 6.8) needs both the lp and the fu scores")
    missing = sorted(invert - set(out))
    if missing:
        raise ValueError(f"cannot invert {', '.join(missing)}: no such scores "
                         f"(have {', '.join(order_metrics(out))})")
    for name in invert - {"lp_fu"}:  # lp_fu's inversion (eq. 6.8) happened in combine
        out[name] = 1.0 - out[name]
    return {n: out[n] for n in order_metrics(out)}


def target_tau(score: pd.Series, truth: pd.Series, target: str) -> float:
    """Weighted tau of one metric on one target, leaving out source == target.

    Sources missing from either side or NaN on either side are left out too; fewer than two
    sources left, or no variation (e.g. all scores equal), gives NaN.
    """
    from scipy.stats import weightedtau

    both = pd.concat([score.rename("s"), truth.rename("g")], axis=1, join="inner")
    both = both[(both.index != target) & both.notna().all(axis=1)]
    if len(both) < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = float(weightedtau(both["s"].to_numpy(float), both["g"].to_numpy(float)).statistic)
    return tau if math.isfinite(tau) else math.nan


def tau_table(scores: Mapping[str, pd.DataFrame], ground_truth: pd.DataFrame) -> pd.DataFrame:
    """targets x metrics weighted tau; targets = ground-truth columns any score table has.

    Targets are sorted; metrics follow ``METRIC_ORDER``. A metric without a column for a
    target gets NaN there.
    """
    names = order_metrics(scores)
    scored = set().union(*(set(scores[n].columns) for n in names)) if names else set()
    targets = sorted(t for t in ground_truth.columns if t in scored)
    taus = pd.DataFrame(np.nan, index=pd.Index(targets, name="target"), columns=names)
    for t in targets:
        truth = ground_truth[t]
        for n in names:
            if t in scores[n].columns:
                taus.loc[t, n] = target_tau(scores[n][t], truth, t)
    return taus


def rank_table(taus: pd.DataFrame, methods: Iterable[str]) -> pd.DataFrame:
    """Per-target ranks of ``methods`` (1 = highest tau); NaN taus share the last places."""
    cols = [m for m in methods if m in taus.columns]
    # -inf puts undefined taus below every defined one; several share the average last rank.
    vals = -taus[cols].fillna(-np.inf)
    return vals.rank(axis=1, method="average")


def friedman(ranks: pd.DataFrame) -> tuple[float, float]:
    """Friedman chi-square and p over targets (rows) for the methods (columns)."""
    from scipy.stats import friedmanchisquare

    n, k = ranks.shape
    if k < 3 or n < 2:
        return math.nan, math.nan
    res = friedmanchisquare(*(ranks[c].to_numpy(float) for c in ranks.columns))
    return float(res.statistic), float(res.pvalue)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Studentized-range quantile q_alpha(k, inf) / sqrt(2) (Demsar's q_alpha table)."""
    from scipy.stats import studentized_range

    if k < 2:
        raise ValueError(f"k ({k}) must be at least 2 methods")
    return float(studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi CD = q_alpha(k, inf)/sqrt(2) * sqrt(k(k+1)/(6N)) for k methods on N targets.

    k = 7, N = 11, alpha = 0.05 gives 2.716. (The thesis prints 2.792: the k = 8 quantile with
    k = 7 in the square root.)
    """
    if n < 1:
        raise ValueError(f"n ({n}) must be at least 1 target")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def evaluate(scores: Mapping[str, pd.DataFrame | Mapping[str, pd.DataFrame]],
             ground_truth: pd.DataFrame, *, invert: Iterable[str] = (),
             ranked: Iterable[str] = THESIS_RANKED, alpha: float = 0.05,
             ncti_convention: str = "thesis") -> Evaluation:
    """Weighted tau per target and metric, ranks, average ranks, Friedman test and CD.

    Args:
        scores: metric -> sources x targets table (see ``prepare_scores``).
        ground_truth: sources x targets test AUC.
        invert: metrics scored as 1 - score (``lp_fu``: eq. 6.8).
        ranked: the methods to rank (default: the thesis' seven); those absent are skipped.
        alpha: significance level of the critical difference.
        ncti_convention: see ``combine``.
    """
    invert = tuple(order_metrics(invert))
    final = prepare_scores(scores, invert=invert, ncti_convention=ncti_convention)
    taus = tau_table(final, ground_truth)
    ranks = rank_table(taus, ranked)
    chi2, p = friedman(ranks)
    k, n = ranks.shape[1], ranks.shape[0]
    cd = critical_difference(k, n, alpha) if k >= 2 and n >= 1 else math.nan
    return Evaluation(taus=taus, ranks=ranks,
                      average_ranks=ranks.mean(axis=0).rename("average_rank"),
                      friedman_chi2=chi2, friedman_p=p, cd=cd, alpha=alpha, inverted=invert,
                      scores=final)
