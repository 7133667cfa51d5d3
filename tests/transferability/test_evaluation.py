"""Evaluation: weighted tau, ranks, Friedman test and Nemenyi CD (thesis Tables 6.2 / 6.3)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from medxfer.transferability.evaluation import (
    METRIC_ORDER, THESIS_RANKED, critical_difference, evaluate, friedman, nemenyi_q,
    prepare_scores, rank_table, target_tau,
)


def _slow_tau_one_way(x, y):
    """Vigna's weighted tau, hyperbolic additive weigher, ranking by decreasing (x, y)."""
    order = sorted(range(len(x)), key=lambda i: (-x[i], -y[i]))
    w = {i: 1.0 / (r + 1) for r, i in enumerate(order)}
    num = dx = dy = 0.0
    for i, j in itertools.combinations(range(len(x)), 2):
        wij = w[i] + w[j]
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        num += wij * sx * sy
        dx += wij * sx * sx
        dy += wij * sy * sy
    return num / math.sqrt(dx * dy)


def slow_weighted_tau(x, y):
    """scipy's default ``rank=True``: the mean of ranking by x and by y."""
    return (_slow_tau_one_way(x, y) + _slow_tau_one_way(y, x)) / 2


def test_tau_by_hand_leaves_out_source_equal_target():
    # By hand: ranking by score gives -6/11, by ground truth -2/11; the mean is -4/11.
    score = pd.Series({"a": 3.0, "b": 2.0, "c": 1.0, "t": 100.0})
    truth = pd.Series({"a": 0.1, "b": 0.3, "c": 0.2, "t": 0.0})
    assert target_tau(score, truth, "t") == pytest.approx(-4 / 11)
    assert slow_weighted_tau([3.0, 2.0, 1.0], [0.1, 0.3, 0.2]) == pytest.approx(-4 / 11)
    # with the self row it would be something else
    assert target_tau(score, truth, "zzz") != pytest.approx(-4 / 11)


def test_tau_extremes_and_missing_sources():
    truth = pd.Series({"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6})
    assert target_tau(pd.Series({"a": 4.0, "b": 3, "c": 2, "d": 1}), truth, "t") == pytest.approx(1)
    assert (target_tau(pd.Series({"a": 1.0, "b": 2, "c": 3, "d": 4}), truth, "t")
            == pytest.approx(-1))
    # sources absent or NaN on one side are left out: only a, b remain
    s = pd.Series({"a": 2.0, "b": 1.0, "c": math.nan, "zz": 7.0})
    assert target_tau(s, truth, "t") == pytest.approx(1)
    assert math.isnan(target_tau(pd.Series({"a": 1.0}), truth, "t"))


def test_tau_table_matches_slow_transcription():
    rng = np.random.default_rng(3)
    sources, targets = list("abcdefg"), ["a", "b", "x"]
    gt = pd.DataFrame(rng.uniform(0.6, 1.0, (7, 3)), index=sources, columns=targets)
    scores = {m: pd.DataFrame(rng.normal(size=(7, 3)), index=sources, columns=targets)
              for m in ("parc", "logme", "leep")}
    scores["logme"].iloc[:3, :] = 0.5  # ties in the scores
    ev = evaluate(scores, gt)
    assert list(ev.taus.columns) == ["logme", "leep", "parc"]  # fixed order
    assert list(ev.taus.index) == targets
    for t in targets:
        keep = [s for s in sources if s != t]
        for m in scores:
            want = slow_weighted_tau(scores[m].loc[keep, t].to_numpy(), gt.loc[keep, t].to_numpy())
            assert ev.taus.loc[t, m] == pytest.approx(want, abs=1e-12)


def _table(rows, cols=THESIS_RANKED):
    return pd.DataFrame(rows, index=[f"t{i}" for i in range(len(rows))], columns=list(cols))


def test_undefined_tau_ranks_last_and_ties_share():
    nan = math.nan
    taus = _table([[0.1, 0.5, nan, 0.3, 0.2, 0.0, 0.9],
                   [0.1, nan, nan, 0.3, 0.2, 0.0, 0.9]])
    r = rank_table(taus, THESIS_RANKED)
    assert r.loc["t0"].tolist() == [5, 2, 7, 3, 4, 6, 1]
    assert r.loc["t1"].tolist() == [4, 6.5, 6.5, 2, 3, 5, 1]


def test_all_equal_scores_give_undefined_tau_ranked_last():
    sources, targets = list("abcd"), ["x", "y"]
    gt = pd.DataFrame([[0.9, 0.6], [0.8, 0.7], [0.7, 0.8], [0.6, 0.9]], index=sources,
                      columns=targets)
    up = pd.DataFrame([[4.0, 1], [3, 2], [2, 3], [1, 4]], index=sources, columns=targets)
    scores = {"logme": up, "parc": -up, "sfda": pd.DataFrame(1.0, index=sources, columns=targets)}
    ev = evaluate(scores, gt)
    assert ev.taus["sfda"].isna().all()
    assert ev.ranks["sfda"].tolist() == [3, 3]
    assert ev.ranks["logme"].tolist() == [1, 1]
    assert ev.average_ranks.to_dict() == {"logme": 1.0, "parc": 2.0, "sfda": 3.0}


def test_lp_fu_ranked_lp_fu_alone_reported_only():
    rng = np.random.default_rng(0)
    sources, targets = list("abcde"), ["x", "y", "z"]
    gt = pd.DataFrame(rng.uniform(0.5, 1, (5, 3)), index=sources, columns=targets)
    scores = {m: pd.DataFrame(rng.uniform(0.1, 1, (5, 3)), index=sources, columns=targets)
              for m in ("logme", "nleep", "lp", "fu", "gbc")}
    ev = evaluate(scores, gt)
    assert list(ev.taus.columns) == ["logme", "nleep", "gbc", "lp", "fu", "lp_fu"]
    assert list(ev.ranks.columns) == ["logme", "nleep", "lp_fu"]


def test_invert_rules():
    idx = ["a", "b", "c"]
    lp = pd.DataFrame({"x": [0.2, 0.6, 0.4]}, index=idx)
    fu = pd.DataFrame({"x": [3.0, 1.0, 2.0]}, index=idx)
    parc = pd.DataFrame({"x": [10.0, -5.0, 0.0]}, index=idx)
    got = prepare_scores({"parc": parc, "lp": lp, "fu": fu}, invert=["parc", "lp_fu"])
    assert list(got) == ["parc", "lp", "fu", "lp_fu"]
    assert got["parc"]["x"].tolist() == [-9.0, 6.0, 1.0]
    pd.testing.assert_frame_equal(got["lp"], lp)  # lp itself not inverted
    # eq. 6.8: (1 - [0, 1, .5]) * (1 - [1, 0, .5])
    np.testing.assert_allclose(got["lp_fu"]["x"], [0.0, 0.0, 0.25])
    with pytest.raises(ValueError, match="cannot invert sfda"):
        prepare_scores({"parc": parc}, invert=["sfda"])
    with pytest.raises(ValueError, match="needs both the lp and the fu"):
        prepare_scores({"lp": lp}, invert=["lp_fu"])
    with pytest.raises(ValueError, match="unknown metric.*valid: " + ", ".join(METRIC_ORDER)):
        prepare_scores({"LogME": parc})


@pytest.mark.parametrize("seed, n, k", [(0, 5, 3), (1, 6, 4), (2, 11, 7), (3, 4, 5)])
def test_friedman_matches_scipy_on_raw_taus(seed, n, k):
    rng = np.random.default_rng(seed)
    taus = pd.DataFrame(rng.uniform(-1, 1, (n, k)).round(1))  # .round(1) makes some ties
    chi2, p = friedman(rank_table(taus, taus.columns))
    ref = friedmanchisquare(*taus.to_numpy().T)
    assert chi2 == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue)


def test_friedman_by_hand():
    # No ties: chi2 = 12N/(k(k+1)) sum Rbar_j^2 - 3N(k+1); N = 3, k = 3, Rbar = (1, 2, 3).
    taus = pd.DataFrame([[0.9, 0.5, 0.1]] * 3)
    chi2, p = friedman(rank_table(taus, taus.columns))
    assert chi2 == pytest.approx(12 * 3 / 12 * (1 + 4 + 9) - 3 * 3 * 4)  # = 6
    assert p == pytest.approx(math.exp(-6 / 2))  # chi-square, 2 dof: sf(x) = exp(-x/2)


# Table 6.2's per-target ranks (thesis, seed 004), Pneumonia's LogME/NLEEP as in its average row.
TABLE_6_2_RANKS = [
    [6, 4, 5, 7, 3, 2, 1], [3, 5, 7, 6, 2, 4, 1], [2, 4, 7, 6, 5, 3, 1], [5, 3, 7, 4, 1, 6, 2],
    [4, 3, 6, 7, 5, 2, 1], [2, 1, 5, 4, 6, 3, 7], [6, 5, 1, 2, 3, 7, 4], [5, 4, 7, 6, 3, 2, 1],
    [2, 5, 7, 6, 4, 3, 1], [6, 3, 7, 4, 5, 2, 1], [3, 7, 5, 2, 6, 4, 1],
]


def test_table_6_2_average_ranks_and_friedman_p():
    taus = _table(-np.asarray(TABLE_6_2_RANKS, float) / 10)
    taus.iloc[[1, 8], 2] = math.nan  # SFDA on the binary targets: undefined, ranked last (7)
    ranks = rank_table(taus, THESIS_RANKED)
    np.testing.assert_array_equal(ranks.to_numpy(), TABLE_6_2_RANKS)
    np.testing.assert_allclose(ranks.mean().round(2), [4.00, 4.00, 5.82, 4.91, 3.91, 3.45, 1.91])
    _, p = friedman(ranks)
    assert round(p, 3) == 0.002


@pytest.mark.parametrize("k, q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850),
                                  (7, 2.949), (8, 3.031), (9, 3.102), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, q):
    assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)


def test_critical_difference_seven_methods_eleven_targets():
    assert critical_difference(7, 11) == pytest.approx(2.716, abs=5e-4)
    # The thesis' 2.792 is the k = 8 quantile with k = 7 in the square root.
    assert nemenyi_q(8) * math.sqrt(7 * 8 / (6 * 11)) == pytest.approx(2.792, abs=5e-4)
    with pytest.raises(ValueError):
        nemenyi_q(1)


def test_evaluate_cd_uses_ranked_count():
    rng = np.random.default_rng(1)
    sources, targets = list("abcdef"), [f"t{i}" for i in range(11)]
    gt = pd.DataFrame(rng.uniform(0.5, 1, (6, 11)), index=sources, columns=targets)
    scores = {m: pd.DataFrame(rng.normal(size=(6, 11)), index=sources, columns=targets)
              for m in ("logme", "parc", "sfda", "ncti", "leep", "nleep", "lp", "fu")}
    ev = evaluate(scores, gt)
    assert ev.ranks.shape == (11, 7)
    assert ev.cd == pytest.approx(2.716, abs=5e-4)
    chi2, p = friedmanchisquare(*(-ev.taus[list(THESIS_RANKED)]).to_numpy().T)
    assert (ev.friedman_chi2, ev.friedman_p) == pytest.approx((chi2, p))
