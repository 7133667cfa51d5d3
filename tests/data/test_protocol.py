"""A cell's rows from the data and its coordinates: folds never leak test images, patients stay
on one side, fractions and counts are nested, transfer parts are disjoint, all deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.config import CellConfig, DataConfig, ProtocolConfig
from medxfer.data.protocol import folds, select_cell, select_transfer
from medxfer.data.sources import load_source
from medxfer.errors import MedxferInputError


@pytest.fixture(scope="module")
def setup(small_synth):
    d = DataConfig(root=str(small_synth), flag="synthchest")  # multi-label, with patients
    other = DataConfig(root=str(small_synth), flag="synthpath")
    return d, load_source(d), load_source(other)


def _protocol(small_synth, **over):
    raw = {"cv": {"folds": 3}, "test_sets": {"p": {"root": str(small_synth),
                                                   "flag": "synthpath", "split": "8:2"}},
           "few_shot": {"fractions": [0.25, 0.5]}, "seed": 3}
    raw.update(over)
    return ProtocolConfig.model_validate(raw)


def test_cv_folds_partition_and_never_leak(small_synth, setup):
    d, src, other = setup
    p = _protocol(small_synth)
    tests = []
    for k in range(3):
        sel = select_cell(src, d, p, CellConfig(fold=k), {"p": other})
        seen = np.r_[sel.train, sel.val]
        assert not set(sel.test) & set(seen) and not set(sel.train) & set(sel.val)
        assert len(seen) + len(sel.test) == len(src)
        # patient-grouped: a patient's images sit on one side of every split
        pat = src.patients
        assert not set(pat[sel.test]) & set(pat[seen])
        assert not set(pat[sel.val]) & set(pat[sel.train])
        tests.append(sel.test)
        assert set(sel.test_sets) == {"p"}
    assert sorted(np.concatenate(tests).tolist()) == list(range(len(src)))


def test_label_fractions_and_counts_are_nested(small_synth, setup):
    d, src, _ = setup
    p = _protocol(small_synth, few_shot=None, label_fractions=[0.25, 0.5, 1.0])
    rows = {f: select_cell(src, d, p, CellConfig(fold=1, fraction=f)).labelled
            for f in (0.25, 0.5, 1.0)}
    assert set(rows[0.25]) < set(rows[0.5]) < set(rows[1.0])
    train = select_cell(src, d, p, CellConfig(fold=1, fraction=0.5)).train
    assert np.array_equal(rows[1.0], train) and len(rows[0.5]) == round(0.5 * len(train))
    counted = {m: select_cell(src, d, p, CellConfig(fold=1, n_labelled=m)).labelled
               for m in (3, 7)}
    assert [len(counted[m]) for m in (3, 7)] == [3, 7] and set(counted[3]) < set(counted[7])
    with pytest.raises(MedxferInputError, match="n_labelled 10000 exceeds"):
        select_cell(src, d, p, CellConfig(fold=1, n_labelled=10000))


def test_transfer_parts(small_synth, setup):
    d, src, other = setup
    p = _protocol(small_synth)
    small, large = (select_transfer(other, p, CellConfig(phase="transfer", fold=0,
                                                         test_set="p", fraction=f))
                    for f in (0.25, 0.5))
    assert set(small.train) < set(large.train)
    assert np.array_equal(small.test, large.test) and np.array_equal(small.val, large.val)
    assert not set(large.test) & set(np.r_[large.train, large.val])
    assert not set(large.val) & set(large.train)
    # zero-shot evaluation of a training cell uses the same test part
    zero = select_cell(src, d, p, CellConfig(fold=2), {"p": other}).test_sets["p"]
    assert np.array_equal(zero, large.test)
    assert abs(len(zero) / len(other) - 0.2) < 0.1
    with pytest.raises(MedxferInputError, match="not a few-shot test set"):
        select_transfer(other, p, CellConfig(phase="transfer", test_set="q", fraction=0.5))


def test_search_cells_have_no_test_rows_and_selection_is_deterministic(small_synth, setup):
    d, src, other = setup
    p = _protocol(small_synth)
    search = select_cell(src, d, p, CellConfig(fold=0, phase="search"), {"p": other})
    assert search.test is None and not search.test_sets
    a = select_cell(src, d, p, CellConfig(fold=0), {"p": other})
    b = select_cell(load_source(d), d, p, CellConfig(fold=0), {"p": other})
    assert a.crc() == b.crc() and np.array_equal(a.train, search.train)
    other_seed = select_cell(src, d, _protocol(small_synth, seed=4), CellConfig(fold=0))
    assert other_seed.crc() != a.crc()


def test_leave_one_site_out(small_synth, setup):
    d, src, _ = setup
    p = ProtocolConfig(leave_one_site_out=True)
    names = [n for n, _, _ in folds(src, p)]
    assert names == [f"site:{s}" for s in sorted(set(src.sites.tolist()))]
    for k, name in enumerate(names):
        sel = select_cell(src, d, p, CellConfig(fold=k))
        assert {f"site:{s}" for s in src.sites[sel.test]} == {name}
        assert name not in {f"site:{s}" for s in src.sites[np.r_[sel.train, sel.val]]}


def test_fold_out_of_range(small_synth, setup):
    d, src, _ = setup
    with pytest.raises(MedxferInputError, match="cell.fold 5 is not one of the 3 folds"):
        select_cell(src, d, _protocol(small_synth), CellConfig(fold=5))
