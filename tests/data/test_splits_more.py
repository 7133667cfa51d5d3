"""k-fold, OOD, fractions, patient-aware, site and leave-target-out splits: every property."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.data.medmnist import MEDMNIST_2D, dataset_info
from medxfer.data.splits import (few_shot_fractions, group_shuffle_split, label_fractions,
                                 leave_one_site_out, leave_target_out, nested_fractions,
                                 ood_split, pool_labels, stratified_kfold)
from medxfer.errors import MedxferInputError


def _single(n=2000, seed=0):
    # imbalanced: 50 %, 30 %, 15 %, 5 %
    return np.random.default_rng(seed).choice(4, n, p=[0.5, 0.3, 0.15, 0.05])


def _multi(n=3000, seed=0, p=(0.02, 0.05, 0.1, 0.2, 0.3, 0.4)):
    return (np.random.default_rng(seed).random((n, len(p))) < p).astype(np.uint8)


def _patients(y, seed=0, max_per=6):
    """Patients of 1-6 images each; a patient's images share its first image's label."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_per + 1, len(y))
    groups = np.repeat(np.arange(len(y)), sizes)[: len(y)]
    first = np.unique(groups, return_index=True)[1]
    y = y.copy()
    y[:] = y[first][groups] if y.ndim == 1 else y[first][groups]
    return y, groups


def _props(y, idx, k):
    return np.bincount(y[idx], minlength=k) / len(idx)


# ---------------------------------------------------------------------------- k-fold
def test_kfold_partitions_and_stratifies():
    y = _single()
    folds = stratified_kfold(y, 5, seed=0)
    tests = np.concatenate([te for _, te in folds])
    assert len(folds) == 5 and np.array_equal(np.sort(tests), np.arange(len(y)))
    for tr, te in folds:
        assert not np.intersect1d(tr, te).size and len(tr) + len(te) == len(y)
        assert abs(len(te) - len(y) / 5) <= 4
        # every class within one image of its share
        assert (np.abs(np.bincount(y[te], minlength=4) - np.bincount(y) / 5) <= 1).all()
        assert tr.dtype == np.int64 and (np.diff(te) > 0).all()


def test_kfold_reproducible_and_seed_matters():
    y = _single()
    a, b = stratified_kfold(y, 4, seed=7), stratified_kfold(y, 4, seed=7)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b))
    c = stratified_kfold(y, 4, seed=8)
    assert not np.array_equal(a[0][1], c[0][1])


def test_kfold_multilabel_iterative_stratification():
    y = _multi()
    folds = stratified_kfold(y, 5, seed=1)
    assert np.array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(len(y)))
    total = y.sum(0)
    for _, te in folds:
        # per-label positives within 10 % (and 3 images) of a fifth, even the 2 % label
        assert (np.abs(y[te].sum(0) - total / 5) <= np.maximum(3, 0.1 * total / 5)).all()
        assert abs(len(te) - len(y) / 5) <= 0.02 * len(y)


def test_group_kfold_no_leakage_and_approximate_stratification():
    y, g = _patients(_single(3000))
    folds = stratified_kfold(y, 5, seed=0, groups=g)
    overall = _props(y, np.arange(len(y)), 4)
    for tr, te in folds:
        assert not set(g[tr]) & set(g[te])
        assert np.abs(_props(y, te, 4) - overall).max() < 0.04
        assert abs(len(te) / len(y) - 0.2) < 0.03
    assert np.array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(len(y)))
    again = stratified_kfold(y, 5, seed=0, groups=g)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(folds, again))


def test_kfold_bad_n_splits():
    with pytest.raises(MedxferInputError, match="n_splits"):
        stratified_kfold(np.zeros(10, int), 1)
    with pytest.raises(MedxferInputError, match="groups"):
        stratified_kfold(np.zeros(10, int), 4, groups=np.repeat([0, 1, 2], [4, 3, 3]))


# ---------------------------------------------------------------------------- OOD split
@pytest.mark.parametrize("ratio,t", [("9:1", 0.1), ("8:2", 0.2), (0.3, 0.3)])
def test_ood_split_sizes_and_stratification(ratio, t):
    y = _single(1999)
    tr, te = ood_split(y, ratio, seed=3)
    assert len(te) == round(1999 * t) and len(tr) + len(te) == 1999
    assert not np.intersect1d(tr, te).size
    # each class split in the ratio to within one image
    assert (np.abs(np.bincount(y[te], minlength=4) - np.bincount(y) * t) <= 1).all()


def test_ood_split_reproducible_and_seed_matters():
    y = _single()
    assert np.array_equal(ood_split(y, "9:1", seed=1)[1], ood_split(y, "9:1", seed=1)[1])
    assert not np.array_equal(ood_split(y, "9:1", seed=1)[1], ood_split(y, "9:1", seed=2)[1])


def test_ood_split_patient_aware_and_multilabel():
    y, g = _patients(_single(3000), seed=1)
    tr, te = ood_split(y, "8:2", seed=0, groups=g)
    assert not set(g[tr]) & set(g[te])
    assert abs(len(te) / len(y) - 0.2) < 0.02
    assert np.abs(_props(y, te, 4) - _props(y, tr, 4)).max() < 0.04
    ym, gm = _patients(_multi(), seed=2)
    tr, te = group_shuffle_split(ym, gm, "9:1", seed=0)
    assert not set(gm[tr]) & set(gm[te]) and abs(len(te) / len(ym) - 0.1) < 0.02
    assert (np.abs(ym[te].mean(0) - ym.mean(0)) < 0.3 * ym.mean(0) + 0.005).all()
    with pytest.raises(MedxferInputError, match="groups"):
        group_shuffle_split(ym, None)


def test_ood_split_bad_ratio():
    with pytest.raises(MedxferInputError, match="test_size"):
        ood_split(np.zeros(10, int), 1.5)
    with pytest.raises(MedxferInputError, match="train:test"):
        ood_split(np.zeros(10, int), "nine to one")


# ---------------------------------------------------------------------------- fractions
def test_label_fractions_nested_sized_stratified():
    y = _single(2000)
    fr = label_fractions(y, seed=0)
    assert sorted(fr) == [0.1, 0.25, 0.5, 1.0]
    assert [len(fr[f]) for f in (0.1, 0.25, 0.5, 1.0)] == [200, 500, 1000, 2000]
    assert set(fr[0.1]) <= set(fr[0.25]) <= set(fr[0.5]) <= set(fr[1.0])
    for f in (0.1, 0.25, 0.5):
        assert (np.abs(np.bincount(y[fr[f]], minlength=4) - np.bincount(y) * f) <= 1.5).all()
    again = label_fractions(y, seed=0)
    assert all(np.array_equal(fr[f], again[f]) for f in fr)
    assert not np.array_equal(fr[0.1], label_fractions(y, seed=1)[0.1])


def test_few_shot_fractions_stay_in_ood_train():
    y = _single(1500)
    tr, te = ood_split(y, "9:1", seed=0)
    fs = few_shot_fractions(y, tr, (0.01, 0.05, 0.1, 1.0), seed=0)
    assert np.array_equal(fs[1.0], tr)
    assert len(fs[0.1]) == round(0.1 * len(tr)) and len(fs[0.01]) == round(0.01 * len(tr))
    assert set(fs[0.01]) <= set(fs[0.05]) <= set(fs[0.1])
    assert not np.intersect1d(fs[1.0], te).size
    # the rare class (5 %) is present in the 10 % subset in proportion
    assert abs(np.mean(y[fs[0.1]] == 3) - np.mean(y[tr] == 3)) < 0.02


def test_multilabel_fractions_nested_and_proportional():
    y = _multi(4000)
    fr = nested_fractions(y, (0.1, 0.5), seed=0)
    assert set(fr[0.1]) <= set(fr[0.5]) and len(fr[0.1]) == 400
    assert (np.abs(y[fr[0.5]].mean(0) - y.mean(0)) < 0.02).all()


def test_fractions_validated():
    with pytest.raises(MedxferInputError, match="fractions"):
        label_fractions(np.zeros(10, int), (0.0, 0.5))
    with pytest.raises(MedxferInputError, match="fractions"):
        label_fractions(np.zeros(10, int), (1.5,))
    assert len(label_fractions(np.zeros(10, int), (0.01,))[0.01]) == 1  # at least one image


# ---------------------------------------------------------------------------- sites
def test_leave_one_site_out():
    sites = np.array(["B", "A", "C", "A", "B", "C", "C"])
    out = leave_one_site_out(sites)
    assert [s for s, _, _ in out] == ["A", "B", "C"]
    for s, tr, te in out:
        assert (sites[te] == s).all() and (sites[tr] != s).all()
        assert len(tr) + len(te) == len(sites)
    with pytest.raises(MedxferInputError, match="patient 'p1'"):
        leave_one_site_out(sites, groups=np.array(["p1", "p1", "p2", "p3", "p4", "p5", "p6"]))
    with pytest.raises(MedxferInputError, match="at least 2 sites"):
        leave_one_site_out(np.array(["A", "A"]))


# ---------------------------------------------------------------------------- pooled sources
def test_leave_target_out_medmnist_offsets():
    infos = {f: dataset_info(f) for f in MEDMNIST_2D}
    pool = leave_target_out(infos, "pathmnist")
    assert "pathmnist" not in pool.members and len(pool.members) == 11
    # 92 classes in all, the organ A/C/S block shared (-22), Path's 9 left out
    assert pool.n_classes == 61 and pool.multilabel  # ChestMNIST is multi-label
    assert pool.offsets["organcmnist"] == pool.offsets["organamnist"]
    blocks = sorted((pool.offsets[f], pool.n_labels[f]) for f in pool.members
                    if f not in ("organcmnist", "organsmnist"))
    for (o1, n1), (o2, _) in zip(blocks, blocks[1:]):
        assert o1 + n1 == o2  # consecutive, disjoint
    assert leave_target_out(infos, "pathmnist", multilabel="drop").n_classes == 61 - 14
    assert leave_target_out(infos, "pathmnist", share_identical=False).n_classes == 83
    organ = leave_target_out(infos, "organamnist", exclude=("organcmnist", "organsmnist"))
    assert organ.n_classes == 70 - 11


def test_pool_labels_do_not_collide():
    pool = leave_target_out({"a": 3, "b": 2, "t": 4, "c": ["x", "y"]}, "t")
    assert pool.members == ("a", "b", "c") and pool.n_classes == 7 and not pool.multilabel
    y, member = pool_labels(pool, {"a": np.array([0, 2]), "b": np.array([[1], [0]]),
                                   "c": np.array([1])})
    assert y.tolist() == [0, 2, 4, 3, 6] and member.tolist() == [0, 0, 1, 1, 2]
    assert pool.label_names[6] == "c:y"
    with pytest.raises(MedxferInputError, match="out of range"):
        pool_labels(pool, {"a": np.array([3]), "b": np.array([0]), "c": np.array([0])})
    with pytest.raises(MedxferInputError, match="missing"):
        pool_labels(pool, {"a": np.array([0])})


def test_pool_labels_multilabel_member_makes_multihot():
    pool = leave_target_out({"s": 2, "t": 2, "m": dataset_info("chestmnist")}, "t")
    assert pool.multilabel and pool.n_classes == 16
    ym = np.zeros((1, 14), np.uint8)
    ym[0, [0, 13]] = 1
    y, _ = pool_labels(pool, {"s": np.array([1]), "m": ym})
    assert y.shape == (2, 16)
    assert np.flatnonzero(y[0]).tolist() == [1] and np.flatnonzero(y[1]).tolist() == [2, 15]
