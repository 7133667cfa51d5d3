"""Seeded subsets of a split. (Issue 6 adds k-fold, OOD, few-shot and patient-aware splits here.)

Per-class subsampling follows the thesis (seed ``004_43f54b618356cecf.txt``, sec. 6.4.1): each
target's train split is cut to 100 images per class and its val split to 25 per class; a class
with fewer images keeps all of them. The test split stays whole.
"""

from __future__ import annotations

from typing import Sequence

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
