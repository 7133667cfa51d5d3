"""Combinations of per-metric scores across the source models of each target.

Some scores only mean something relative to the other candidates for the same target: the
paper's LP x FU product (thesis eq. 6.5-6.6, inverted form eq. 6.8) and NCTI, whose three raw
terms are min-max normalised over the candidate sources and summed. Both take sources x targets
tables (index = source or architecture flags, columns = target flags) and return one.

Reference: thesis chapter 6 (seed 004); ``shared/specs/transferability-metrics.md``, "The paper's
proposed score" and "Departures" 1-2.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

NCTI_TERMS = ("seli", "ncc", "vc")
NCTI_CONVENTIONS = ("thesis", "paper")
_NEEDS = {"lp_fu": ("lp", "fu"), "ncti": NCTI_TERMS}


def list_combinations() -> list[str]:
    """Names ``combine`` accepts."""
    return sorted(_NEEDS)


def minmax(table: pd.DataFrame, *, skip_self: bool = False) -> pd.DataFrame:
    """Min-max normalise every column over the values present (NaN skipped).

    Args:
        table: sources x targets scores.
        skip_self: set the source == target cells to NaN first, so they neither take part in
            the min/max nor get a normalised value (NCTI's rule).

    Returns:
        A new table in [0, 1]; a column whose present values are all equal becomes NaN (0/0):
        such a column ranks nothing.
    """
    t = table.astype(float).copy()
    if skip_self:
        t = t.mask(_self_mask(t))
    lo, hi = t.min(axis=0, skipna=True), t.max(axis=0, skipna=True)
    span = (hi - lo).replace(0.0, np.nan)
    return (t - lo) / span


def _self_mask(t: pd.DataFrame) -> pd.DataFrame:
    idx = np.asarray(t.index, dtype=object)[:, None]
    cols = np.asarray(t.columns, dtype=object)[None, :]
    return pd.DataFrame(idx == cols, index=t.index, columns=t.columns)


def _terms(name: str, table) -> dict[str, pd.DataFrame]:
    needed = _NEEDS[name]
    if not isinstance(table, Mapping):
        raise ValueError(f"combine({name!r}): expected a mapping of the per-metric tables "
                         f"{{{', '.join(repr(n) for n in needed)}}}, got {type(table).__name__}")
    missing = [n for n in needed if n not in table]
    if missing:
        raise ValueError(f"combine({name!r}): missing table(s) {', '.join(missing)}; "
                         f"needs {', '.join(needed)}")
    extra = sorted(set(table) - set(needed))
    if extra:
        raise ValueError(f"combine({name!r}): unexpected table(s) {', '.join(extra)}; "
                         f"needs {', '.join(needed)}")
    out = {}
    for n in needed:
        t = table[n]
        if not isinstance(t, pd.DataFrame):
            raise ValueError(f"combine({name!r}): table {n!r} must be a pandas DataFrame")
        out[n] = t
    return out


def combine(name: str, table, *, invert: bool = False,
            convention: str = "thesis") -> pd.DataFrame:
    """Combine per-metric score tables into one score per (source, target).

    Args:
        name: ``"lp_fu"`` or ``"ncti"``.
        table: mapping of sources x targets DataFrames: ``{"lp", "fu"}`` for ``lp_fu``;
            ``{"seli", "ncc", "vc"}`` (NCTI's raw terms) for ``ncti``. Not modified.
        invert: the inverted score. ``lp_fu``: thesis eq. 6.8, (1 - minmax LP) x (1 - minmax FU),
            used for Table 6.3. ``ncti``: 1 - NCTI (Table 6.3's "1-NCTI").
        convention: ``ncti`` only. ``"thesis"`` (default, the thesis code and its published
            scores): seli_n + ncc_n + vc_n, in [0, 3]. ``"paper"`` (the NCTI paper and its
            code, S_vc = minus the nuclear norms): seli_n + ncc_n - vc_n, in [-1, 2].

    Returns:
        sources x targets DataFrame (union of the inputs' sources and targets; NaN where a
        term is missing).

    ``lp_fu``: per target column, LP is min-max normalised over every LP value present and FU
    over every FU value present, NaN skipped; a source == target value takes part when present
    (the published FU files have one, the LP files hold NaN there); the product is in [0, 1].
    ``ncti``: each term is min-max normalised over the candidate sources of the target, with
    source == target left out.

    Raises:
        ValueError: unknown name or convention, or a missing/unexpected table.
    """
    if name not in _NEEDS:
        raise ValueError(f"unknown combination {name!r}; valid: {', '.join(list_combinations())}")
    if convention not in NCTI_CONVENTIONS:
        raise ValueError(f"convention {convention!r}: "
                         f"expected one of {', '.join(NCTI_CONVENTIONS)}")
    terms = _terms(name, table)
    if name == "lp_fu":
        lp, fu = minmax(terms["lp"]), minmax(terms["fu"])
        if invert:
            lp, fu = 1.0 - lp, 1.0 - fu
        return lp.mul(fu)
    seli, ncc, vc = (minmax(terms[n], skip_self=True) for n in NCTI_TERMS)
    sign = 1.0 if convention == "thesis" else -1.0
    score = seli.add(ncc).add(sign * vc)
    return 1.0 - score if invert else score
