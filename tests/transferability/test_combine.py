"""combine(): LP x FU (thesis eq. 6.5-6.6, inverted eq. 6.8) and NCTI, on hand-computed tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from medxfer.transferability.combine import combine, list_combinations, minmax

NAN = math.nan
SOURCES = ["s1", "s2", "s3", "t1"]


def _lp_fu_tables():
    # t1 is also a source: LP holds NaN there (skipped), FU holds a value (included).
    lp = pd.DataFrame({"t1": [0.5, 0.7, 0.9, NAN], "t2": [0.2, NAN, 0.6, 0.4]}, index=SOURCES)
    fu = pd.DataFrame({"t1": [2.0, 4.0, 3.0, 6.0], "t2": [1.0, 2.0, 3.0, 5.0]}, index=SOURCES)
    return lp, fu


def test_lp_fu_product_of_minmax_over_present_values():
    lp, fu = _lp_fu_tables()
    got = combine("lp_fu", {"lp": lp, "fu": fu})
    # t1: LP -> 0, .5, 1, NaN; FU over {2,4,3,6} -> 0, .5, .25, 1.
    # t2: LP over {.2,.6,.4} -> 0, NaN, 1, .5; FU over {1,2,3,5} -> 0, .25, .5, 1.
    want = pd.DataFrame({"t1": [0.0, 0.25, 0.25, NAN], "t2": [0.0, NAN, 0.5, 0.5]}, index=SOURCES)
    pd.testing.assert_frame_equal(got, want)


def test_lp_fu_inverted_is_eq_6_8():
    lp, fu = _lp_fu_tables()
    got = combine("lp_fu", {"lp": lp, "fu": fu}, invert=True)
    # (1 - minmax LP) x (1 - minmax FU)
    want = pd.DataFrame({"t1": [1.0, 0.25, 0.0, NAN], "t2": [1.0, NAN, 0.0, 0.0]}, index=SOURCES)
    pd.testing.assert_frame_equal(got, want)
    # eq. 6.8 is not 1 - (eq. 6.6)
    plain = combine("lp_fu", {"lp": lp, "fu": fu})
    assert not np.allclose((1 - plain)["t1"].iloc[:3], got["t1"].iloc[:3])


def test_lp_fu_does_not_modify_inputs():
    lp, fu = _lp_fu_tables()
    lp0, fu0 = lp.copy(), fu.copy()
    combine("lp_fu", {"lp": lp, "fu": fu}, invert=True)
    pd.testing.assert_frame_equal(lp, lp0)
    pd.testing.assert_frame_equal(fu, fu0)


def _ncti_terms():
    idx = ["a", "b", "c", "t"]
    # the source == target row ('t') must be ignored: its values would change every min/max
    return {
        "seli": pd.DataFrame({"t": [1.0, 3.0, 2.0, 100.0]}, index=idx),
        "ncc": pd.DataFrame({"t": [0.5, 0.1, 0.3, -5.0]}, index=idx),
        "vc": pd.DataFrame({"t": [10.0, 20.0, 30.0, 0.0]}, index=idx),
    }


def test_ncti_thesis_adds_normalised_terms_without_self():
    got = combine("ncti", _ncti_terms())
    # seli_n = 0, 1, .5; ncc_n = 1, 0, .5; vc_n = 0, .5, 1
    want = pd.DataFrame({"t": [1.0, 1.5, 2.0, NAN]}, index=["a", "b", "c", "t"])
    pd.testing.assert_frame_equal(got, want)


def test_ncti_paper_subtracts_vc_and_invert_is_one_minus():
    got = combine("ncti", _ncti_terms(), convention="paper")
    pd.testing.assert_series_equal(got["t"], pd.Series([1.0, 0.5, 0.0, NAN], index=list("abct"),
                                                       name="t"))
    inv = combine("ncti", _ncti_terms(), invert=True)
    np.testing.assert_allclose(inv["t"].iloc[:3], [0.0, -0.5, -1.0])


def test_minmax_constant_column_is_undefined():
    t = pd.DataFrame({"x": [1.0, 1.0, NAN]}, index=["a", "b", "c"])
    assert minmax(t)["x"].isna().all()


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: lp_fu, ncti"):
        combine("lpfu", {})
    assert list_combinations() == ["lp_fu", "ncti"]


@pytest.mark.parametrize("table, match", [
    (pd.DataFrame({"t": [1.0]}), "expected a mapping"),
    ({"lp": pd.DataFrame({"t": [1.0]})}, "missing table.*fu"),
    ({"lp": pd.DataFrame(), "fu": pd.DataFrame(), "ncc": pd.DataFrame()}, "unexpected table.*ncc"),
])
def test_bad_tables(table, match):
    with pytest.raises(ValueError, match=match):
        combine("lp_fu", table)


def test_bad_convention():
    with pytest.raises(ValueError, match="thesis, paper"):
        combine("ncti", _ncti_terms(), convention="sum")
