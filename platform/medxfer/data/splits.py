"""Seeded subsets and splits. Every function returns sorted ``int64`` index arrays and gives the
same result for the same seed (an int or a sequence of ints, as for ``np.random.default_rng``).

Per-class subsampling follows the thesis (seed ``004_43f54b618356cecf.txt``, sec. 6.4.1): each
target's train split is cut to 100 images per class and its val split to 25 per class; a class
with fewer images keeps all of them. The test split stays whole.

Splits for the protocols of the seeds (issue 6):

* :func:`stratified_kfold` -- k folds, stratified; with ``groups`` (patients) no group is on both
  sides of any fold (thesis sec. 4: "stratified by patient").
* :func:`ood_split` -- the OOD train/test split of seed 000 sec. 4.1 (9:1 for P2/P3, 8:2 for the
  breast sets), stratified, optionally patient-aware; :func:`few_shot_fractions` -- nested
  fractions of its train part for few-shot fine-tuning.
* :func:`label_fractions` -- nested 100/50/25/10 % subsets of a training set (seed 001, Table II).
* :func:`leave_one_site_out` -- domain generalisation by held-out site (seed 002).
* :func:`leave_target_out` / :func:`pool_labels` -- the thesis' ``medmnist`` source: all
  datasets except the target, with disjoint label blocks (seed 004 sec. 6.4.1).

How stratification works:

* Single-label, no groups: exact per-class allocation (k-fold via scikit-learn's
  ``StratifiedKFold``; train/test by the largest-remainder rule, so every class is split in the
  requested ratio to within one image and the total is exact).
* Multi-label ``(N, L)`` 0/1 targets, or any split with ``groups``: iterative stratification
  (Sechidis et al., ECML-PKDD 2011), run on groups when given: each group is one unit carrying
  the per-label counts of its images and its size; units are dealt, rarest label first, to the
  fold that most lacks that label (ties: the fold that most lacks images, then at random). Rows
  without any label count as a label of their own ("no finding"). Per-label proportions are
  approximate (within a few percent on realistic data; exact balance is impossible when
  patients differ in size).
* Nested fractions: one seeded *systematic* order per stratum (class, or for multi-label the
  exact label combination) is interleaved, so every prefix holds each stratum in proportion to
  within one image; a fraction is a prefix, hence 10 % is contained in 25 % and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from medxfer.errors import MedxferInputError

#: Thesis sec. 6.4.1: images per class kept in the train / val splits of a target.
THESIS_TRAIN_PER_CLASS = 100
THESIS_VAL_PER_CLASS = 25


def _rng(seed: int | Sequence[int]) -> np.random.Generator:
    return np.random.default_rng(seed)


def subsample_per_class(labels: np.ndarray, n_per_class: int, *,
                        seed: int | Sequence[int] = 0,
                        multilabel: bool | None = None) -> np.ndarray:
    """Indices of a seeded subset with ``n_per_class`` images of each class.

    Single-label (``labels`` ``(N,)`` or ``(N, 1)``): exactly ``min(n_per_class, count_c)`` images
    of each class ``c``, drawn uniformly without replacement.

    Multi-label (``labels`` ``(N, L)`` of 0/1), the rule: visit images in one seeded random order;
    for each label, rarest first, add not-yet-chosen positives of that label until the subset holds
    ``min(n_per_class, positives)`` positives of it (images chosen for an earlier label count
    towards every label they carry); finally add ``min(n_per_class, count)`` images with no label
    ("no finding" is a class of its own). So every label has at least ``n_per_class`` positives
    where the data has them, and the subset has at most ``(L + 1) * n_per_class`` images.

    Args:
        labels: ``(N,)``, ``(N, 1)`` class indices, or ``(N, L)`` 0/1 multi-label targets.
        n_per_class: images wanted per class (``>= 1``).
        seed: seed (or seed sequence) of the draw; the same seed gives the same subset.
        multilabel: force the interpretation; default: ``labels`` has more than one column.

    Returns:
        Sorted ``int64`` indices into ``labels``.
    """
    labels = np.asarray(labels)
    if n_per_class < 1:
        raise MedxferInputError(f"n_per_class must be >= 1, got {n_per_class}",
                                field="n_per_class")
    if labels.ndim == 1:
        labels = labels[:, None]
    if multilabel is None:
        multilabel = labels.shape[1] > 1
    rng = _rng(seed)
    if not multilabel:
        if labels.shape[1] != 1:
            raise MedxferInputError(f"single-label targets must be (N,) or (N, 1), got "
                                    f"{labels.shape}", field="labels")
        y = labels[:, 0]
        picks = [rng.permutation(np.flatnonzero(y == c))[:n_per_class] for c in np.unique(y)]
        return np.sort(np.concatenate(picks)).astype(np.int64) if picks else np.zeros(0, np.int64)
    order = rng.permutation(len(labels))
    y = labels[order].astype(bool)
    chosen = np.zeros(len(y), bool)
    counts = np.zeros(y.shape[1], np.int64)
    for j in np.argsort(y.sum(0), kind="stable"):
        need = min(n_per_class, int(y[:, j].sum())) - counts[j]
        if need > 0:
            new = np.flatnonzero(y[:, j] & ~chosen)[:need]
            chosen[new] = True
            counts += y[new].sum(0)
    chosen[np.flatnonzero(~y.any(1))[:n_per_class]] = True
    return np.sort(order[chosen]).astype(np.int64)


def thesis_subsets(train_labels: np.ndarray, val_labels: np.ndarray, *, seed: int = 0,
                   n_train: int = THESIS_TRAIN_PER_CLASS, n_val: int = THESIS_VAL_PER_CLASS,
                   multilabel: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train and val indices per the thesis (100 / 25 per class), independent draws of ``seed``."""
    return (subsample_per_class(train_labels, n_train, seed=(seed, 0), multilabel=multilabel),
            subsample_per_class(val_labels, n_val, seed=(seed, 1), multilabel=multilabel))


# --------------------------------------------------------------------------------------------
# Helpers shared by the splits below.
# --------------------------------------------------------------------------------------------

#: Ratios of the OOD protocol (seed 000 sec. 4.1 and appendix C): train:test.
OOD_RATIOS = {"9:1": 0.1, "8:2": 0.2}
#: Label fractions of seed 001 (Table II).
LABEL_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
#: Default few-shot fractions of the OOD train part (seed 000 Fig. 4 sweeps "training ratios").
FEW_SHOT_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)

Split = tuple[np.ndarray, np.ndarray]


def _sorted(idx) -> np.ndarray:
    return np.sort(np.asarray(idx, dtype=np.int64))


def _as_targets(labels: np.ndarray, multilabel: bool | None = None) -> tuple[np.ndarray, bool]:
    """``(N,)`` int class indices, or ``(N, L)`` bool for multi-label."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2:
        raise MedxferInputError(f"labels must be (N,), (N, 1) or (N, L), got {labels.shape}",
                                field="labels")
    if multilabel is None:
        multilabel = labels.shape[1] > 1
    if multilabel:
        if not np.isin(labels, (0, 1)).all():
            raise MedxferInputError("multi-label targets must be 0/1", field="labels")
        return labels.astype(bool), True
    if labels.shape[1] != 1:
        raise MedxferInputError(f"single-label targets must be (N,) or (N, 1), got "
                                f"{labels.shape}", field="labels")
    return labels[:, 0], False


def _groups(groups, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise MedxferInputError(f"groups must have one entry per image ({n}), got shape "
                                f"{groups.shape}", field="groups")
    return groups


def _test_fraction(test_size: float | str) -> float:
    if isinstance(test_size, str):
        if test_size in OOD_RATIOS:
            return OOD_RATIOS[test_size]
        try:
            a, b = (float(v) for v in test_size.split(":"))
            return b / (a + b)
        except ValueError:
            raise MedxferInputError(f"ratio {test_size!r} is not 'train:test' such as '9:1'",
                                    field="test_size") from None
    t = float(test_size)
    if not 0.0 < t < 1.0:
        raise MedxferInputError(f"test_size must be in (0, 1) or 'train:test', got {test_size}",
                                field="test_size")
    return t


def _sk_seed(seed: int | Sequence[int]) -> int:
    """An int for scikit-learn's ``random_state`` derived from our seed (sequence)."""
    return int(_rng(seed).integers(2 ** 31 - 1))


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integers ``k_c <= counts_c`` summing to ``total``, proportional to ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    quota = counts * (total / max(counts.sum(), 1))
    k = np.floor(quota).astype(np.int64)
    rest = total - int(k.sum())
    order = np.argsort(-(quota - k), kind="stable")
    k[order[:rest]] += 1
    return np.minimum(k, counts)


def _strata(y: np.ndarray, multilabel: bool) -> np.ndarray:
    """Stratum id per row: the class, or the exact label combination for multi-label."""
    if not multilabel:
        return np.unique(y, return_inverse=True)[1].reshape(-1)
    return np.unique(y, axis=0, return_inverse=True)[1].reshape(-1)


def _iterative_stratify(counts: np.ndarray, sizes: np.ndarray, proportions: Sequence[float],
                        rng: np.random.Generator) -> np.ndarray:
    """Fold of each unit by iterative stratification (Sechidis et al. 2011), on weighted units.

    Args:
        counts: ``(U, L)`` label counts per unit (a unit is an image, or a patient's images).
        sizes: ``(U,)`` images per unit.
        proportions: wanted share of images per fold (sums to 1).

    Returns:
        ``(U,)`` fold index per unit.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    # "no label" is a label of its own, so label-free units are stratified too
    counts = np.concatenate([counts, np.maximum(sizes - counts.sum(1), 0)[:, None] *
                             (counts.sum(1) == 0)[:, None]], axis=1)
    p = np.asarray(proportions, dtype=np.float64)
    want_label = p[:, None] * counts.sum(0)[None, :]          # (F, L)
    want_size = p * sizes.sum()                               # (F,)
    fold = np.full(len(sizes), -1, dtype=np.int64)
    has = counts > 0
    remaining = has.sum(0).astype(np.int64)
    order = rng.permutation(len(sizes))
    while (remaining > 0).any():
        live = np.flatnonzero(remaining > 0)
        lab = int(live[np.argmin(remaining[live])])  # rarest label still to deal
        units = order[has[order, lab] & (fold[order] < 0)]
        for u in units:
            need = want_label[:, lab]
            cand = np.flatnonzero(need == need.max())
            if len(cand) > 1:
                s = want_size[cand]
                cand = cand[s == s.max()]
            j = int(cand[0] if len(cand) == 1 else rng.choice(cand))
            fold[u] = j
            want_label[j] -= counts[u]
            want_size[j] -= sizes[u]
            remaining -= has[u]
    for u in order[fold[order] < 0]:  # units of size 0 only
        fold[u] = int(np.argmax(want_size))
    return fold


def _group_units(y: np.ndarray, multilabel: bool, groups: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit id per row, per-unit label counts, per-unit sizes): groups or single rows."""
    if multilabel:
        onehot = y.astype(np.float64)
    else:
        cls = np.unique(y, return_inverse=True)[1].reshape(-1)
        onehot = np.eye(int(cls.max(initial=-1)) + 1)[cls]
    if groups is None:
        unit = np.arange(len(y))
    else:
        unit = np.unique(groups, return_inverse=True)[1].reshape(-1)
    n_units = int(unit.max(initial=-1)) + 1
    counts = np.zeros((n_units, onehot.shape[1]))
    np.add.at(counts, unit, onehot)
    sizes = np.bincount(unit, minlength=n_units).astype(np.float64)
    return unit, counts, sizes


# --------------------------------------------------------------------------------------------
# k-fold, train/test, fractions.
# --------------------------------------------------------------------------------------------

def stratified_kfold(labels: np.ndarray, n_splits: int = 5, *, seed: int | Sequence[int] = 0,
                     groups: np.ndarray | None = None,
                     multilabel: bool | None = None) -> list[Split]:
    """Stratified k-fold: ``n_splits`` ``(train, test)`` pairs whose test parts partition the data.

    Single-label without ``groups``: scikit-learn's ``StratifiedKFold`` (shuffled; every class
    split to within one image). Multi-label, or with ``groups`` (patient ids; no group is on both
    sides of a fold): iterative stratification on groups (see the module docstring).

    Raises:
        MedxferInputError: ``n_splits < 2``, or fewer images/groups than folds.
    """
    y, ml = _as_targets(labels, multilabel)
    n = len(y)
    g = _groups(groups, n)
    units = n if g is None else len(np.unique(g))
    if n_splits < 2 or n_splits > units:
        what = "groups" if g is not None else "images"
        raise MedxferInputError(f"n_splits must be in [2, {units}] ({what}), got {n_splits}",
                                field="n_splits")
    if not ml and g is None:
        from sklearn.model_selection import StratifiedKFold

        if np.bincount(_strata(y, False)).max() < n_splits:
            raise MedxferInputError(f"no class has {n_splits} images", field="n_splits")
        import warnings

        with warnings.catch_warnings():  # "least populated class has only ..." is expected
            warnings.simplefilter("ignore", UserWarning)
            skf = StratifiedKFold(n_splits, shuffle=True, random_state=_sk_seed(seed))
            folds = [test for _, test in skf.split(np.zeros(n), y)]
    else:
        unit, counts, sizes = _group_units(y, ml, g)
        fold_of_unit = _iterative_stratify(counts, sizes, [1.0 / n_splits] * n_splits,
                                           _rng(seed))
        fold = fold_of_unit[unit]
        folds = [np.flatnonzero(fold == k) for k in range(n_splits)]
    everything = np.arange(n)
    return [(_sorted(np.setdiff1d(everything, f)), _sorted(f)) for f in folds]


def ood_split(labels: np.ndarray, test_size: float | str = "9:1", *,
              seed: int | Sequence[int] = 0, groups: np.ndarray | None = None,
              multilabel: bool | None = None) -> Split:
    """Stratified train/test split of an out-of-distribution dataset (seed 000 sec. 4.1).

    Args:
        test_size: share of the test part, or ``"9:1"`` / ``"8:2"`` (any ``"a:b"``).
        groups: patient ids; with them no patient is in both parts (the test share is then
            approximate, whole patients being moved).

    Returns:
        ``(train, test)`` sorted indices; together they are all rows, disjoint.
    """
    t = _test_fraction(test_size)
    y, ml = _as_targets(labels, multilabel)
    n = len(y)
    g = _groups(groups, n)
    if n < 2:
        raise MedxferInputError(f"need at least 2 images to split, got {n}", field="labels")
    if not ml and g is None:
        rng = _rng(seed)
        strata = _strata(y, False)
        per = np.bincount(strata)
        n_test = _largest_remainder(per, int(round(n * t)))
        test = np.concatenate([rng.permutation(np.flatnonzero(strata == c))[:k]
                               for c, k in enumerate(n_test)])
    else:
        unit, counts, sizes = _group_units(y, ml, g)
        if len(sizes) < 2:
            raise MedxferInputError("need at least 2 groups to split", field="groups")
        fold = _iterative_stratify(counts, sizes, [1.0 - t, t], _rng(seed))
        if not (fold == 1).any() or not (fold == 0).any():  # tiny inputs: force both sides
            fold[np.argmin(sizes)] = 1 - fold[np.argmin(sizes)]
        test = np.flatnonzero(fold[unit] == 1)
    return _sorted(np.setdiff1d(np.arange(n), test)), _sorted(test)


def group_shuffle_split(labels: np.ndarray, groups: np.ndarray, test_size: float | str = 0.2, *,
                        seed: int | Sequence[int] = 0) -> Split:
    """Patient-aware train/test split with approximate stratification: :func:`ood_split` with
    ``groups`` required."""
    if groups is None:
        raise MedxferInputError("group_shuffle_split needs groups (patient ids)", field="groups")
    return ood_split(labels, test_size, seed=seed, groups=groups)


def nested_fractions(labels: np.ndarray, fractions: Sequence[float] = LABEL_FRACTIONS, *,
                     seed: int | Sequence[int] = 0, indices: np.ndarray | None = None,
                     multilabel: bool | None = None) -> dict[float, np.ndarray]:
    """Nested, stratified subsets: ``{fraction: sorted indices}``, the smaller inside the larger.

    Each fraction ``f`` keeps ``max(1, round(f * N))`` images: the first ones of one seeded order
    that interleaves the strata systematically (class, or label combination for multi-label), so
    every class has ``f`` of its images to within one, and every subset contains the smaller.

    Args:
        labels: targets of all rows.
        fractions: each in (0, 1].
        indices: restrict to these rows (e.g. the train part of :func:`ood_split`); returned
            indices are still into ``labels``.
    """
    y, ml = _as_targets(labels, multilabel)
    pool = np.arange(len(y)) if indices is None else np.asarray(indices, dtype=np.int64)
    bad = [f for f in fractions if not 0.0 < float(f) <= 1.0]
    if bad:
        raise MedxferInputError(f"fractions must be in (0, 1], got {bad}", field="fractions")
    if len(pool) == 0:
        raise MedxferInputError("no images to take fractions of", field="indices")
    rng = _rng(seed)
    strata = _strata(y[pool], ml)
    key = np.empty(len(pool))
    for c in np.unique(strata):
        members = np.flatnonzero(strata == c)
        # systematic positions (rank + offset) / n_c in a random order within the stratum
        key[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    order = pool[np.lexsort((rng.random(len(pool)), key))]
    return {f: _sorted(order[:max(1, int(round(float(f) * len(pool))))]) for f in fractions}


def label_fractions(labels: np.ndarray, fractions: Sequence[float] = LABEL_FRACTIONS, *,
                    seed: int | Sequence[int] = 0, indices: np.ndarray | None = None,
                    multilabel: bool | None = None) -> dict[float, np.ndarray]:
    """The 100/50/25/10 % label fractions of seed 001, nested and stratified
    (:func:`nested_fractions`)."""
    return nested_fractions(labels, fractions, seed=seed, indices=indices, multilabel=multilabel)


def few_shot_fractions(labels: np.ndarray, train: np.ndarray,
                       fractions: Sequence[float] = FEW_SHOT_FRACTIONS, *,
                       seed: int | Sequence[int] = 0,
                       multilabel: bool | None = None) -> dict[float, np.ndarray]:
    """Nested fractions of the OOD train part ``train`` (from :func:`ood_split`) for few-shot
    fine-tuning (seed 000 sec. 4.1, step 3); the OOD test part is never touched."""
    return nested_fractions(labels, fractions, seed=seed, indices=train, multilabel=multilabel)


# --------------------------------------------------------------------------------------------
# Domain generalisation: sites.
# --------------------------------------------------------------------------------------------

def leave_one_site_out(sites: np.ndarray, *, groups: np.ndarray | None = None
                       ) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """One ``(site, train, test)`` per site (sorted): test = that site, train = all others.

    Args:
        groups: patient ids; if a patient appears at two sites the split would leak, and a
            :class:`MedxferInputError` names the patient.
    """
    sites = np.asarray(sites)
    if sites.ndim != 1 or len(sites) == 0:
        raise MedxferInputError(f"sites must be a non-empty (N,) array, got {sites.shape}",
                                field="sites")
    names = np.unique(sites)
    if len(names) < 2:
        raise MedxferInputError(f"leave-one-site-out needs at least 2 sites, got {list(names)}",
                                field="sites")
    g = _groups(groups, len(sites))
    if g is not None:
        for p in np.unique(g):
            at = np.unique(sites[g == p])
            if len(at) > 1:
                raise MedxferInputError(f"patient {p.item()!r} appears at sites {at.tolist()}; "
                                        "leave-one-site-out would leak it", field="groups")
    return [(s.item() if hasattr(s, "item") else s, _sorted(np.flatnonzero(sites != s)),
             _sorted(np.flatnonzero(sites == s))) for s in names]


# --------------------------------------------------------------------------------------------
# Leave-target-out pooled sources (the thesis' ``medmnist`` source).
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PooledLabels:
    """How the labels of several datasets are combined into one pooled source.

    Every member gets a block of consecutive pooled class indices ``[offset, offset + n)``;
    members with identical label names share one block when pooled with ``share_identical``
    (MedMNIST's organ A/C/S). Pooled class names are ``"<flag>:<name>"`` (the first member of a
    shared block names it).

    Attributes:
        target: the left-out target.
        members: pooled datasets, in pooling order (the order of the input mapping).
        offsets: ``{flag: first pooled index}``.
        n_labels: ``{flag: classes of that dataset}``.
        label_names: the ``n_classes`` pooled names.
        multilabel: whether any member is multi-label (then :func:`pool_labels` returns
            multi-hot ``(N, n_classes)`` targets; else ``(N,)`` class indices).
    """

    target: str
    members: tuple[str, ...]
    offsets: dict[str, int] = field(compare=False)
    n_labels: dict[str, int] = field(compare=False)
    label_names: tuple[str, ...]
    multilabel: bool

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


def leave_target_out(datasets: Mapping[str, Any], target: str, *,
                     exclude: Sequence[str] = (), share_identical: bool = True,
                     multilabel: str = "keep") -> PooledLabels:
    """The pooled source of all datasets but ``target`` (seed 004 sec. 6.4.1), with label offsets.

    Args:
        datasets: ``{flag: DatasetInfo}`` (from :func:`medxfer.data.medmnist.dataset_info`), or
            ``{flag: label names}`` / ``{flag: n_classes}``; order = pooling order.
        target: left out (it need not be in ``datasets``, e.g. an external CXR target).
        exclude: further flags to leave out (e.g. ``organcmnist``/``organsmnist`` with an
            ``organamnist`` target, which share its images' patients).
        share_identical: members whose label names are identical share one label block.
        multilabel: ``"keep"`` (multi-label members pooled as multi-hot) or ``"drop"`` (leave
            them out, so the pooled task stays single-label).

    With the 12 MedMNIST 2D datasets (INFO label counts) and the defaults the pool has
    92 - (organ blocks shared: 22) = 70 classes minus the target's block, e.g. 62 for
    ``bloodmnist``; ``multilabel="drop"`` removes ChestMNIST's 14 (e.g. 48 for ``bloodmnist``).
    An organ target keeps the shared organ block unless its siblings are in ``exclude``.
    """
    if multilabel not in ("keep", "drop"):
        raise MedxferInputError(f"multilabel must be 'keep' or 'drop', got {multilabel!r}",
                                field="multilabel")
    unknown = [f for f in exclude if f not in datasets]
    if unknown:
        raise MedxferInputError(f"exclude names unknown datasets {unknown}; known: "
                                f"{list(datasets)}", field="exclude")
    offsets: dict[str, int] = {}
    n_labels: dict[str, int] = {}
    names: list[str] = []
    blocks: dict[tuple[str, ...], int] = {}
    any_ml = False
    members = []
    for flag, spec in datasets.items():
        if flag == target or flag in exclude:
            continue
        labels, is_ml = _label_spec(flag, spec)
        if is_ml and multilabel == "drop":
            continue
        members.append(flag)
        any_ml |= is_ml
        n_labels[flag] = len(labels)
        key = tuple(labels) if share_identical and not labels[0].startswith("\0") else None
        if key is not None and key in blocks:
            offsets[flag] = blocks[key]
            continue
        offsets[flag] = len(names)
        if key is not None:
            blocks[key] = len(names)
        names.extend(f"{flag}:{n.lstrip(chr(0))}" for n in labels)
    if not members:
        raise MedxferInputError(f"nothing left to pool without {target!r}", field="datasets")
    return PooledLabels(target, tuple(members), offsets, n_labels, tuple(names), any_ml)


def _label_spec(flag: str, spec: Any) -> tuple[list[str], bool]:
    """(label names, multilabel) from a DatasetInfo, a name list or a class count."""
    if hasattr(spec, "labels") and hasattr(spec, "multilabel"):
        return list(spec.labels), bool(spec.multilabel)
    if isinstance(spec, (int, np.integer)):
        if spec < 1:
            raise MedxferInputError(f"{flag}: n_classes must be >= 1", field=flag)
        # anonymous names never match another dataset's, so counts never share a block
        return [f"\0{i}" for i in range(int(spec))], False
    if isinstance(spec, (list, tuple)) and spec:
        return [str(v) for v in spec], False
    raise MedxferInputError(f"{flag}: expected a DatasetInfo, label names or a class count, got "
                            f"{spec!r}", field=flag)


def pool_labels(pooled: PooledLabels, labels: Mapping[str, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate members' labels into pooled targets (members in ``pooled.members`` order).

    Returns:
        ``(targets, member)``: targets ``(N,)`` int64 (offset class index) or, when
        ``pooled.multilabel``, ``(N, n_classes)`` uint8 multi-hot (a single-label row is
        one-hot); ``member`` ``(N,)`` index into ``pooled.members`` of each row's dataset.
    """
    missing = [f for f in pooled.members if f not in labels]
    if missing:
        raise MedxferInputError(f"labels missing for pooled members {missing}", field="labels")
    parts, member = [], []
    for m, flag in enumerate(pooled.members):
        y = np.asarray(labels[flag])
        y = y[:, None] if y.ndim == 1 else y
        n, off = pooled.n_labels[flag], pooled.offsets[flag]
        if y.shape[1] > 1:  # multi-label member
            if y.shape[1] != n:
                raise MedxferInputError(f"{flag}: labels have {y.shape[1]} columns, expected {n}",
                                        field=flag)
            out = np.zeros((len(y), pooled.n_classes), np.uint8)
            out[:, off:off + n] = y
        else:
            c = y[:, 0].astype(np.int64)
            if len(c) and (c.min() < 0 or c.max() >= n):
                raise MedxferInputError(f"{flag}: label {c.max() if c.max() >= n else c.min()} "
                                        f"out of range [0, {n})", field=flag)
            if pooled.multilabel:
                out = np.zeros((len(c), pooled.n_classes), np.uint8)
                out[np.arange(len(c)), off + c] = 1
            else:
                out = off + c
        parts.append(out)
        member.append(np.full(len(y), m, np.int64))
    return np.concatenate(parts), np.concatenate(member)
