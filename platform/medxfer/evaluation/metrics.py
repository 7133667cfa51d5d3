"""Task metrics: AUC, accuracy, F1 micro/macro, mAP (scikit-learn) and Dice.

Conventions (MedMNIST's, so numbers compare with the benchmark; AUC on a 0-1 scale):

* ``task`` is MedMNIST's name: ``"binary-class"``, ``"multi-class"``,
  ``"multi-label, binary-class"``; ``"ordinal-regression"`` is scored as multi-class.
* ``y_true``: ``(n,)`` or ``(n, 1)`` class indices, or ``(n, L)`` 0/1 for multi-label.
* ``y_score``: probabilities: softmax ``(n, K)`` (binary: ``(n, 2)``, or ``(n,)``/``(n, 1)``
  P(positive)), sigmoid ``(n, L)`` for multi-label. AUC and mAP only need a monotone score, so
  logits give the same AUC/mAP; accuracy and F1 threshold at 0.5 (binary, multi-label) or take
  the argmax (multi-class).
* Accuracy of a multi-label task is the mean over labels of the per-label accuracy (MedMNIST's
  ``getACC``), not subset accuracy.
* Macro averages skip classes/labels whose AUC/AP is undefined (only one value in ``y_true``);
  if none is defined the metric is NaN.

F1 and mAP follow seed ``002_d7fb762c9e967338.txt`` (F1 micro/macro, AUC macro, mAP); Dice follows
seed ``003_4aa9fa56a835f729.txt`` (lung segmentation).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

TASKS = ("binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression")
#: Keys of :func:`classification_metrics`; all are higher-is-better.
CLASSIFICATION_METRICS = ("auc", "acc", "f1_micro", "f1_macro", "map")


def _kind(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    kinds = {"binary-class": "binary", "multi-label, binary-class": "multilabel"}
    return kinds.get(task, "multiclass")


def _prepare(task: str, y_true, y_score) -> tuple[str, np.ndarray, np.ndarray]:
    """Return (kind, y_true, score) with binary scores as ``(n,)`` and labels as ints."""
    kind = _kind(task)
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} rows, y_score {len(y_score)}")
    if kind == "multilabel":
        if y_true.ndim != 2 or y_true.shape != y_score.shape:
            raise ValueError(f"multi-label needs y_true and y_score of the same (n, L) shape, got "
                             f"{y_true.shape} and {y_score.shape}")
        return kind, y_true.astype(int), y_score
    y_true = y_true.reshape(len(y_true), -1)
    if y_true.shape[1] != 1:
        raise ValueError(f"{task} needs y_true of shape (n,) or (n, 1), got {y_true.shape}")
    y_true = y_true[:, 0].astype(int)
    if kind == "binary":
        s = y_score.reshape(len(y_score), -1)
        if s.shape[1] == 2:  # p1 - p0 (or l1 - l0) is monotone in P(positive)
            return kind, y_true, s[:, 1] - s[:, 0]
        if s.shape[1] != 1:
            raise ValueError(f"binary-class needs y_score (n,), (n, 1) or (n, 2), got "
                             f"{y_score.shape}")
        return kind, y_true, s[:, 0]
    if y_score.ndim != 2 or y_true.max(initial=0) >= y_score.shape[1]:
        raise ValueError(f"multi-class needs y_score (n, K) with K > max label, got "
                         f"{y_score.shape}")
    return kind, y_true, y_score


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=int)[y]


def _macro(fn, y_bin: np.ndarray, score: np.ndarray) -> float:
    vals = [fn(y_bin[:, j], score[:, j]) for j in range(y_bin.shape[1])
            if 0 < y_bin[:, j].sum() < len(y_bin)]
    return float(np.mean(vals)) if vals else float("nan")


def _both_classes(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def auc(task: str, y_true, y_score) -> float:
    """ROC AUC: binary; macro one-vs-rest (multi-class); macro over labels (multi-label)."""
    kind, y, s = _prepare(task, y_true, y_score)
    if kind == "binary":
        return float(roc_auc_score(y, s)) if _both_classes(y) else float("nan")
    y_bin = y if kind == "multilabel" else _onehot(y, s.shape[1])
    return _macro(roc_auc_score, y_bin, s)


def average_precision(task: str, y_true, y_score) -> float:
    """mAP: average precision (binary), macro over classes (one-vs-rest) or labels."""
    kind, y, s = _prepare(task, y_true, y_score)
    if kind == "binary":
        return float(average_precision_score(y, s)) if y.any() else float("nan")
    y_bin = y if kind == "multilabel" else _onehot(y, s.shape[1])
    return _macro(average_precision_score, y_bin, s)


def predictions(task: str, y_true, y_score,
                threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)``: argmax (multi-class) or ``score > threshold`` (binary, multi-label).

    A binary ``(n, 2)`` score predicts the argmax.
    """
    kind, y, s = _prepare(task, y_true, y_score)
    if kind == "multiclass":
        return y, s.argmax(1)
    if kind == "binary" and np.asarray(y_score).reshape(len(y), -1).shape[1] == 2:
        return y, (s > 0).astype(int)
    return y, (s > threshold).astype(int)


def accuracy(task: str, y_true, y_score, threshold: float = 0.5) -> float:
    """Accuracy; multi-label: mean of the per-label accuracies (MedMNIST ``getACC``)."""
    y, pred = predictions(task, y_true, y_score, threshold)
    if _kind(task) == "multilabel":
        return float(np.mean([accuracy_score(y[:, j], pred[:, j]) for j in range(y.shape[1])]))
    return float(accuracy_score(y, pred))


def f1(task: str, y_true, y_score, average: str = "macro", threshold: float = 0.5) -> float:
    """F1 with ``average`` ``"micro"`` or ``"macro"`` (binary: over both classes)."""
    y, pred = predictions(task, y_true, y_score, threshold)
    labels = None
    if _kind(task) == "multiclass":
        labels = np.arange(np.asarray(y_score).shape[1])
    elif _kind(task) == "binary":
        labels = np.array([0, 1])
    return float(f1_score(y, pred, average=average, labels=labels, zero_division=0))


def classification_metrics(task: str, y_true, y_score, *, prefix: str = "",
                           threshold: float = 0.5) -> dict[str, float]:
    """All classification metrics for one split: ``auc, acc, f1_micro, f1_macro, map``.

    The training loop calls this per split with ``prefix="val_"`` / ``"test_"``.

    Args:
        task: MedMNIST task name (see module docstring).
        y_true: ``(n,)``/``(n, 1)`` class indices or ``(n, L)`` 0/1.
        y_score: probabilities ``(n, K)``, ``(n,)`` (binary) or ``(n, L)``.

    Raises:
        ValueError: unknown task or shapes that do not fit it.
    """
    out = {"auc": auc(task, y_true, y_score),
           "acc": accuracy(task, y_true, y_score, threshold),
           "f1_micro": f1(task, y_true, y_score, "micro", threshold),
           "f1_macro": f1(task, y_true, y_score, "macro", threshold),
           "map": average_precision(task, y_true, y_score)}
    return {prefix + k: v for k, v in out.items()}


def dice(y_true, y_pred, *, reduction: str = "mean", empty: float = 1.0) -> float | np.ndarray:
    """Dice coefficient ``2|A & B| / (|A| + |B|)`` of binary masks, per image.

    Args:
        y_true, y_pred: ``(n, H, W)`` (or ``(H, W)``, or any ``(n, ...)``) masks; nonzero = in.
        reduction: ``"mean"`` over images, or ``"none"`` for the ``(n,)`` per-image values.
        empty: value when both masks are empty.
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: {t.shape} and {p.shape}")
    if t.ndim <= 2:
        t, p = t[None], p[None]
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    inter = (t & p).sum(1)
    denom = t.sum(1) + p.sum(1)
    d = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), empty)
    if reduction == "none":
        return d
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return float(d.mean())
