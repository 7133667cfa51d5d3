"""Shortcut-study aggregation (medxfer.evaluation.shortcut) against hand-computed values."""

from __future__ import annotations

import math

import pytest

from medxfer.evaluation.shortcut import (mean_ci, permutation_p, shortcut_curves,
                                         source_permutations)


def test_mean_ci_is_the_t_interval():
    ci = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert (ci.n, ci.mean) == (3, 2.0)
    assert ci.lo == pytest.approx(2.0 - half) and ci.hi == pytest.approx(2.0 + half)
    one = mean_ci([0.7])
    assert one.mean == 0.7 and math.isnan(one.lo) and math.isnan(one.hi)
    with pytest.raises(ValueError):
        mean_ci([0.5, float("nan")])


def test_permutation_p_exact_values():
    # 20 ways to pick 3 of 6; only the observed split and its mirror are as extreme
    assert permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 / 20)
    # five folds per source, fully separated: the thesis' floor 2/252 ~ 0.0079
    assert permutation_p([0.9, 0.91, 0.92, 0.93, 0.94],
                         [0.5, 0.51, 0.52, 0.53, 0.54]) == pytest.approx(2 / 252)
    assert permutation_p([0.5, 0.6], [0.5, 0.6]) == 1.0
    # a partial overlap: 1,2,4 vs 3,5,6 (|diff| 7/3 - 14/3); splits with |diff| >= 7/3:
    # {1,2,3},{1,2,4},{3,5,6},{4,5,6} -> 4 of 20
    assert permutation_p([1, 2, 4], [3, 5, 6]) == pytest.approx(4 / 20)


def test_permutation_p_monte_carlo_when_large():
    a, b = [float(i) for i in range(12)], [float(i) + 100 for i in range(12)]
    p = permutation_p(a, b, n_perm=2000, seed=1)
    assert 1 / 2001 <= p < 0.005
    assert permutation_p(a, a, n_perm=500) > 0.9


def _rec(row, p_art, fold, iid, ood, phase="train"):
    return {"row": row, "phase": phase, "p_art": p_art, "fold": fold, "status": "FINISHED",
            "metrics": {"test_auc": iid, "ood_test_auc": ood}, "run_id": f"{row}{p_art}{fold}"}


def test_curves_and_permutations_from_records():
    recs = [_rec("imagenet", 0.0, 0, 0.80, 0.80), _rec("imagenet", 0.0, 1, 0.82, 0.78),
            _rec("imagenet", 1.0, 0, 0.99, 0.20), _rec("imagenet", 1.0, 1, 0.97, 0.30),
            _rec("radimagenet", 1.0, 0, 0.95, 0.60), _rec("radimagenet", 1.0, 1, 0.93, 0.62),
            _rec("imagenet", 1.0, 2, 0.5, 0.5, phase="transfer")]
    curves = shortcut_curves(recs)
    got = {(r.source, r.set, r.p_art): (r.n, r.mean) for r in curves.itertuples()}
    assert got[("imagenet", "ood", 1.0)] == (2, pytest.approx(0.25))
    assert got[("imagenet", "iid", 1.0)] == (2, pytest.approx(0.98))
    assert got[("radimagenet", "ood", 1.0)] == (2, pytest.approx(0.61))
    assert len(curves) == 6  # imagenet at 2 shares, radimagenet at 1, two sets each
    row = curves[(curves.source == "imagenet") & (curves.set == "ood") & (curves.p_art == 1)]
    half = 12.706204736174707 * math.sqrt(0.005) / math.sqrt(2)  # s = sqrt(0.005)
    assert float(row.hi.iloc[0]) == pytest.approx(0.25 + half)
    perms = source_permutations(recs)
    assert len(perms) == 2  # only p_art 1 has both sources, for iid and ood
    ood = perms[perms.set == "ood"].iloc[0]
    assert (ood.source_a, ood.source_b) == ("imagenet", "radimagenet")
    assert ood["diff"] == pytest.approx(0.25 - 0.61)
    assert ood.p == pytest.approx(2 / 6)  # 2 + 2 values, separated: 2 of C(4, 2)


def test_curves_clip_the_interval_to_the_auc_range():
    """iid at p_art 1: 0.99 and 0.97 -> mean 0.98, s = sqrt(0.0002), half-width
    12.706 * 0.014142 / sqrt(2) = 0.12706: the t interval [0.85294, 1.10706] is clipped to
    [0.85294, 1]. ood at p_art 1: 0.02 and 0.10 -> mean 0.06, s = sqrt(0.0032), half-width
    12.706 * 0.056569 / sqrt(2) = 0.50825: [-0.44825, 0.56825] becomes [0, 0.56825]. A single
    fold keeps NaN bounds."""
    recs = [_rec("imagenet", 1.0, 0, 0.99, 0.02), _rec("imagenet", 1.0, 1, 0.97, 0.10),
            _rec("radimagenet", 1.0, 0, 0.90, 0.40)]
    curves = shortcut_curves(recs).set_index(["source", "set", "p_art"])
    iid, ood = curves.loc[("imagenet", "iid", 1.0)], curves.loc[("imagenet", "ood", 1.0)]
    assert mean_ci([0.99, 0.97]).hi == pytest.approx(1.10706, abs=1e-5)  # the raw interval
    assert (iid["lo"], iid["hi"]) == (pytest.approx(0.85294, abs=1e-5), 1.0)
    assert mean_ci([0.02, 0.10]).lo == pytest.approx(-0.44825, abs=1e-5)
    assert (ood["lo"], ood["hi"]) == (0.0, pytest.approx(0.56825, abs=1e-5))
    single = curves.loc[("radimagenet", "iid", 1.0)]
    assert single["n"] == 1 and math.isnan(single["lo"]) and math.isnan(single["hi"])
