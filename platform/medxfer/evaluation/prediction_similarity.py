"""Prediction similarity of two classifiers: how often they make the same mistakes.

Thesis (seed ``004_43f54b618356cecf.txt``) ch. 3 sec. 3.3.2, eq. 3.2 (after its ref. [68]): with
the mistake indicator ``q_f(x, y) = 1[f(x) != y]`` over the test set, the prediction similarity of
``f_a`` and ``f_b`` is ``P(q_{f_a}(x, y) = q_{f_b}(x, y))``. Two classifiers with accuracies
``a_1, a_2`` whose mistakes are independent have the expected similarity
``a_1 a_2 + (1 - a_1)(1 - a_2)``, the baseline the thesis compares against.

Multi-label predictions ``(n, L)`` count every (image, label) pair as one decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PredictionSimilarity:
    """Eq. 3.2 and its independent-mistakes baseline.

    Attributes:
        similarity: ``P(q_a = q_b)``, in [0, 1].
        independent: ``a_1 a_2 + (1 - a_1)(1 - a_2)`` for the two accuracies.
        acc_a, acc_b: The accuracies (share of correct decisions).
        n: Number of decisions compared.
    """

    similarity: float
    independent: float
    acc_a: float
    acc_b: float
    n: int


def independent_similarity(acc_a: float, acc_b: float) -> float:
    """Expected eq. 3.2 value for classifiers with independent mistakes."""
    for a in (acc_a, acc_b):
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"accuracies must be in [0, 1], got {a}")
    return acc_a * acc_b + (1.0 - acc_a) * (1.0 - acc_b)


def prediction_similarity(pred_a, pred_b, y_true) -> PredictionSimilarity:
    """Eq. 3.2 for two sets of hard predictions.

    Args:
        pred_a: Predicted class indices ``(n,)`` (or 0/1 ``(n, L)`` multi-label) of model A.
        pred_b: The same for model B.
        y_true: True labels in the same shape (``(n, 1)`` is accepted for ``(n,)``).

    Returns:
        :class:`PredictionSimilarity`.

    Raises:
        ValueError: Shapes differ or nothing to compare.
    """
    arrays = [np.asarray(a) for a in (pred_a, pred_b, y_true)]
    arrays = [a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a for a in arrays]
    pa, pb, y = arrays
    if not pa.shape == pb.shape == y.shape or pa.size == 0:
        raise ValueError(f"predictions and labels must have one non-empty shape, got "
                         f"{pa.shape}, {pb.shape}, {y.shape}")
    qa, qb = pa != y, pb != y
    acc_a, acc_b = 1.0 - float(qa.mean()), 1.0 - float(qb.mean())
    return PredictionSimilarity(float((qa == qb).mean()), independent_similarity(acc_a, acc_b),
                                acc_a, acc_b, int(qa.size))
