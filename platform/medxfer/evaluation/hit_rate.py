"""Pointing-game hit rate of saliency maps against expert boxes or masks.

Seed ``000_3dd3de5c534b555f.txt`` sec. 4 (Fig. 5(b)), after Saporta et al. 2022 ("Benchmarking
saliency methods for chest X-ray interpretation", its ref. [35],
https://doi.org/10.1038/s42256-022-00536-x): an image scores a hit when the most salient point of
its map lies inside the ground-truth region; the hit rate is the share of hits over the images
that have a region. Its chance level is the mean area fraction of the regions (a uniformly random
point).

Ties (ours): when several pixels share the maximum, the image's score is the share of them inside
the region, so a constant map scores its region's area fraction (chance), not a hit decided by
scan order.
"""

from __future__ import annotations

import numpy as np


def boxes_to_masks(boxes, n: int, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise boxes ``(image_index, x, y, w, h)`` (pixels, top-left origin) into masks.

    Args:
        boxes: Iterable of ``(i, x, y, w, h)``; several boxes per image are united.
        n: Number of images.
        shape: ``(H, W)``.

    Returns:
        ``(n, H, W)`` bool masks; pixel ``(r, c)`` is inside when ``x <= c < x + w`` and
        ``y <= r < y + h`` (box edges rounded to whole pixels, clipped to the image).
    """
    masks = np.zeros((n, *shape), dtype=bool)
    h_img, w_img = shape
    for i, x, y, w, h in boxes:
        if not 0 <= int(i) < n:
            raise ValueError(f"box for image {i} but only {n} images")
        if w <= 0 or h <= 0:
            raise ValueError(f"box of image {i} has width {w} and height {h}: expected > 0")
        c0, r0 = max(int(round(x)), 0), max(int(round(y)), 0)
        c1, r1 = min(int(round(x + w)), w_img), min(int(round(y + h)), h_img)
        masks[int(i), r0:r1, c0:c1] = True
    return masks


def pointing_hits(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per-image pointing-game score (1 hit, 0 miss, a fraction on ties).

    Args:
        saliency: ``(n, H, W)`` maps, higher = more salient.
        masks: ``(n, H, W)`` ground-truth regions (bool or 0/1).

    Returns:
        ``(n,)`` float scores; NaN for images whose mask is empty.

    Raises:
        ValueError: Shapes differ, or a map has NaN.
    """
    s = np.asarray(saliency, dtype=np.float64)
    m = np.asarray(masks).astype(bool)
    if s.shape != m.shape or s.ndim != 3:
        raise ValueError(f"saliency {s.shape} and masks {m.shape} must both be (n, H, W)")
    if np.isnan(s).any():
        raise ValueError("saliency maps contain NaN")
    top = s >= s.reshape(len(s), -1).max(1)[:, None, None]
    scores = (top & m).sum((1, 2)) / top.sum((1, 2))
    return np.where(m.any((1, 2)), scores, np.nan)


def hit_rate(saliency: np.ndarray, masks: np.ndarray) -> float:
    """Mean pointing-game score over the images with a non-empty region (NaN if none)."""
    scores = pointing_hits(saliency, masks)
    valid = ~np.isnan(scores)
    return float(scores[valid].mean()) if valid.any() else float("nan")


def chance_rate(masks: np.ndarray) -> float:
    """Hit rate of a uniformly random point: mean area fraction of the non-empty regions."""
    m = np.asarray(masks).astype(bool)
    frac = m.mean((1, 2))
    valid = m.any((1, 2))
    return float(frac[valid].mean()) if valid.any() else float("nan")
