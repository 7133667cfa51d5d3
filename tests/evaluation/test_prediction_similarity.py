"""Prediction similarity (thesis eq. 3.2) and its independent-classifier expectation."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.evaluation.prediction_similarity import (independent_similarity,
                                                      prediction_similarity)


def test_a_model_with_itself_is_one():
    y = np.array([0, 1, 2, 1, 0, 2])
    pred = np.array([0, 2, 2, 1, 1, 2])  # two mistakes
    res = prediction_similarity(pred, pred, y)
    assert res.similarity == 1.0 and res.acc_a == res.acc_b == pytest.approx(4 / 6)


def test_by_hand():
    y = np.array([1, 1, 0, 0, 1])
    a = np.array([1, 0, 0, 1, 1])  # mistakes at 1, 3 -> acc 0.6
    b = np.array([1, 0, 1, 0, 0])  # mistakes at 1, 2, 4 -> acc 0.4
    res = prediction_similarity(a, b, y[:, None])
    # q_a = 0 1 0 1 0, q_b = 0 1 1 0 1: equal at 0 and 1 -> 2/5
    assert res.similarity == pytest.approx(0.4)
    assert res.independent == pytest.approx(0.6 * 0.4 + 0.4 * 0.6)  # 0.48
    assert res.n == 5


def test_independent_expectation_by_hand_and_by_simulation():
    assert independent_similarity(0.9, 0.8) == pytest.approx(0.72 + 0.02)
    rng = np.random.default_rng(0)
    y = np.zeros(200_000, dtype=int)
    a = (rng.random(y.size) > 0.9).astype(int)  # independent mistakes, acc 0.9 and 0.7
    b = (rng.random(y.size) > 0.7).astype(int)
    assert prediction_similarity(a, b, y).similarity == pytest.approx(0.9 * 0.7 + 0.1 * 0.3,
                                                                        abs=0.005)


def test_multilabel_counts_every_decision():
    y = np.array([[1, 0], [0, 1]])
    a = np.array([[1, 1], [0, 1]])
    res = prediction_similarity(a, y, y)
    assert res.n == 4 and res.acc_a == 0.75 and res.similarity == 0.75


def test_errors():
    with pytest.raises(ValueError, match="one non-empty shape"):
        prediction_similarity([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        independent_similarity(1.2, 0.5)
