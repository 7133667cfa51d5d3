"""Per-class Dice of label maps, by hand; background and absent classes."""

import math

import numpy as np
import pytest

from medxfer.evaluation.segmentation import dice_metrics, dice_per_class, mean_dice


def test_per_class_by_hand():
    t = np.array([[[0, 1, 1, 2], [0, 1, 1, 2]]])
    p = np.array([[[0, 1, 0, 2], [1, 1, 1, 2]]])
    d = dice_per_class(p, t, 3)
    # class 0: |P|=2, |T|=2, |P&T|=1 -> 2/4; class 1: |P|=4, |T|=4, inter 3 -> 6/8; class 2: 1
    assert d[0].tolist() == pytest.approx([0.5, 0.75, 1.0])
    assert mean_dice(p, t, 3) == pytest.approx((0.75 + 1.0) / 2)
    assert mean_dice(p, t, 3, include_background=True) == pytest.approx((0.5 + 1.75) / 3)


def test_absent_class_is_left_out():
    t = np.zeros((2, 2, 2), int)
    p = np.zeros((2, 2, 2), int)
    t[0, 0, 0] = p[0, 0, 0] = 1  # image 0 has class 1 (perfect); image 1 has none
    d = dice_per_class(p, t, 2)
    assert d[0, 1] == 1.0 and math.isnan(d[1, 1])
    assert mean_dice(p, t, 2) == 1.0
    m = dice_metrics(p, t, 2, prefix="val_", class_names=["background", "lung"])
    assert m["val_dice"] == 1.0 and m["val_dice_lung"] == 1.0
    assert math.isnan(mean_dice(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), 2))
    with pytest.raises(ValueError, match="outside"):
        dice_per_class(p + 5, t, 2)
