"""Task metrics against hand-computed values on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from medxfer.evaluation.metrics import (CLASSIFICATION_METRICS, accuracy, auc, average_precision,
                                        classification_metrics, dice, f1)


def test_binary_auc_by_hand():
    # positives 0.8, 0.4; negatives 0.6, 0.1: pairs (0.8>0.6, 0.8>0.1, 0.4<0.6, 0.4>0.1) -> 3/4
    y, s = [1, 1, 0, 0], [0.8, 0.4, 0.6, 0.1]
    assert auc("binary-class", y, s) == 0.75
    two_col = np.stack([1 - np.array(s), s], 1)
    assert auc("binary-class", np.array(y)[:, None], two_col) == 0.75
    logits = np.log(two_col)  # any monotone score gives the same AUC
    assert auc("binary-class", y, logits) == 0.75


def test_binary_accuracy_f1_ap():
    y, s = [1, 1, 0, 0], [0.8, 0.4, 0.6, 0.1]
    # predictions 1, 0, 1, 0 -> 2/4 correct
    assert accuracy("binary-class", y, s) == 0.5
    # class 1: tp=1 fp=1 fn=1 -> F1 0.5; class 0: tp=1 fp=1 fn=1 -> 0.5
    assert f1("binary-class", y, s, "macro") == 0.5
    # AP: ranks 0.8 (pos, P=1), 0.6 (neg), 0.4 (pos, P=2/3) -> (1 + 2/3) / 2
    assert average_precision("binary-class", y, s) == pytest.approx(5 / 6)


def test_multiclass_ovr_macro_auc_and_accuracy():
    y = [0, 1, 2, 2]
    s = np.array([[0.7, 0.2, 0.1],
                  [0.3, 0.4, 0.3],
                  [0.2, 0.5, 0.3],
                  [0.1, 0.1, 0.8]])
    # class 0: pos 0.7 vs neg 0.3, 0.2, 0.1 -> 1; class 1: pos 0.4 vs 0.2, 0.5, 0.1 -> 2/3;
    # class 2: pos 0.3, 0.8 vs neg 0.1, 0.3 -> (0.5 + 1 + 1 + 1) / 4 = 7/8
    assert auc("multi-class", y, s) == pytest.approx((1 + 2 / 3 + 7 / 8) / 3)
    # argmax 0, 1, 1, 2 -> 3/4
    assert accuracy("multi-class", y, s) == 0.75
    assert accuracy("ordinal-regression", y, s) == 0.75
    # per class F1: c0 1, c1 (tp1 fp1) 2/3, c2 (tp1 fn1) 2/3 -> macro 7/9; micro = acc
    assert f1("multi-class", y, s, "macro") == pytest.approx(7 / 9)
    assert f1("multi-class", y, s, "micro") == pytest.approx(0.75)


def test_multilabel_macro_auc_acc_and_undefined_label_skipped():
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.2, 0.6], [0.2, 0.7, 0.4], [0.6, 0.3, 0.9], [0.4, 0.1, 0.3]])
    # label 0: pos .9 .6 vs neg .2 .4 -> 1; label 1: pos .7 .3 vs .2 .1 -> 1; label 2 all
    # positive: undefined, skipped
    assert auc("multi-label, binary-class", y, s) == 1.0
    # per-label accuracy at 0.5: l0 4/4, l1 3/4 (0.3 missed), l2 2/4 -> mean 3/4
    assert accuracy("multi-label, binary-class", y, s) == pytest.approx(0.75)


def test_classification_metrics_keys_prefix_and_values():
    y, s = [1, 1, 0, 0], [0.8, 0.4, 0.6, 0.1]
    m = classification_metrics("binary-class", y, s, prefix="val_")
    assert sorted(m) == sorted("val_" + k for k in CLASSIFICATION_METRICS)
    assert m["val_auc"] == 0.75 and m["val_acc"] == 0.5


def test_perfect_and_single_class_cases():
    y = np.array([0, 1, 2])
    m = classification_metrics("multi-class", y, np.eye(3))
    assert all(v == 1.0 for v in m.values())
    assert math.isnan(auc("binary-class", [1, 1], [0.2, 0.9]))


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown task"):
        auc("regression", [0], [0.1])
    with pytest.raises(ValueError, match="same"):
        auc("multi-label, binary-class", np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="rows"):
        accuracy("multi-class", [0, 1], np.zeros((3, 2)))


def test_dice_by_hand_and_matches_sklearn_f1():
    t = np.zeros((2, 4, 4), int)
    p = np.zeros((2, 4, 4), int)
    t[0, :2, :2] = 1          # 4 pixels
    p[0, :2, :3] = 1          # 6 pixels, 4 shared -> 2*4/10 = 0.8
    # image 1: both empty -> 1.0 by convention
    assert dice(t, p, reduction="none").tolist() == [0.8, 1.0]
    assert dice(t, p) == pytest.approx(0.9)
    assert dice(t[0], p[0]) == pytest.approx(f1_score(t[0].ravel(), p[0].ravel()))
    with pytest.raises(ValueError, match="shapes differ"):
        dice(t, p[:, :3])
