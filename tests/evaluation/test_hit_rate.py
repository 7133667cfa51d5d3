"""Pointing-game hit rate (seed 000 sec. 4, Saporta et al.): known answers."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.evaluation.hit_rate import boxes_to_masks, chance_rate, hit_rate, pointing_hits


def _masks(seed=0, n=20, s=16):
    rng = np.random.default_rng(seed)
    boxes = [(i, *rng.integers(0, 10, 2), *rng.integers(2, 6, 2)) for i in range(n)]
    return boxes_to_masks(boxes, n, (s, s))


def test_a_map_that_is_the_mask_scores_one():
    m = _masks()
    assert hit_rate(m.astype(float), m) == 1.0


def test_the_inverted_mask_scores_zero_and_a_constant_map_scores_chance():
    m = _masks(1)
    assert hit_rate(1.0 - m, m) == 0.0
    assert hit_rate(np.zeros(m.shape), m) == pytest.approx(chance_rate(m))


def test_single_peak_by_hand_and_empty_masks_are_skipped():
    m = np.zeros((3, 4, 4), bool)
    m[0, :2, :2] = True
    m[1, 2:, 2:] = True  # image 2: no region
    s = np.zeros((3, 4, 4))
    s[0, 1, 1] = 5.0  # inside
    s[1, 0, 0] = 5.0  # outside
    scores = pointing_hits(s, m)
    assert scores[:2].tolist() == [1.0, 0.0] and np.isnan(scores[2])
    assert hit_rate(s, m) == 0.5
    assert chance_rate(m) == pytest.approx(4 / 16)


def test_boxes_rasterise_x_as_column_and_y_as_row():
    m = boxes_to_masks([(0, 1, 2, 3, 1)], 1, (5, 6))
    assert m[0].nonzero()[0].tolist() == [2, 2, 2] and m[0].nonzero()[1].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="width"):
        boxes_to_masks([(0, 1, 2, 0, 1)], 1, (5, 6))


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        pointing_hits(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
