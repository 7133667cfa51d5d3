"""Per-class subsampling (thesis sec. 6.4.1: 100 train / 25 val per class)."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.data.splits import subsample_per_class, thesis_subsets
from medxfer.errors import MedxferInputError


def test_exact_counts_per_class_and_small_class_kept_whole():
    y = np.repeat([0, 1, 2, 3], [50, 200, 7, 120])
    idx = subsample_per_class(y, 25, seed=3)
    assert np.bincount(y[idx]).tolist() == [25, 25, 7, 25]
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)


def test_reproducible_by_seed_and_seed_matters():
    y = np.random.default_rng(0).integers(0, 5, 1000)[:, None]
    a, b = subsample_per_class(y, 20, seed=1), subsample_per_class(y, 20, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, subsample_per_class(y, 20, seed=2))


def test_multilabel_rule():
    rng = np.random.default_rng(0)
    y = (rng.random((2000, 6)) < [0.01, 0.1, 0.3, 0.3, 0.05, 0.5]).astype(np.uint8)
    n = 30
    idx = subsample_per_class(y, n, seed=0)
    pos = y[idx].sum(0)
    assert (pos >= np.minimum(n, y.sum(0))).all()  # every label reaches n (or all it has)
    assert pos[0] == y[:, 0].sum() < n  # the rare label is kept whole
    assert (~y[idx].any(1)).sum() == n  # "no finding" is its own class
    assert len(idx) <= 7 * n
    assert np.array_equal(idx, subsample_per_class(y, n, seed=0))


def test_thesis_subsets_default_100_25():
    y_train = np.repeat(np.arange(3), 300)
    y_val = np.repeat(np.arange(3), 60)
    tr, va = thesis_subsets(y_train, y_val, seed=0)
    assert np.bincount(y_train[tr]).tolist() == [100] * 3
    assert np.bincount(y_val[va]).tolist() == [25] * 3


def test_bad_n():
    with pytest.raises(MedxferInputError, match="n_per_class must be >= 1"):
        subsample_per_class(np.zeros(3), 0)
