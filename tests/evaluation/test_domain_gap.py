"""Domain gap (seed 000 App. A.2): features by hand, MMD ~0 to itself, a shift is significant."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.evaluation.domain_gap import (FEATURE_NAMES, image_features, median_gamma, mds_map,
                                           mmd2, mmd_matrix, mmd_test, standardise)


def _images(seed, n=40, shift=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 160, (n, 16, 16))
    return np.clip(base + shift, 0, 255).astype(np.uint8)


def test_features_by_hand():
    # a 2x2 checkerboard of 0/255 at 2 levels: horizontal and vertical neighbours always
    # differ (contrast 1, homogeneity 0.5), diagonal ones never (contrast 0, homogeneity 1)
    img = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)[None]
    f = dict(zip(FEATURE_NAMES, image_features(img, levels=2)[0]))
    assert f["mean"] == pytest.approx(0.5) and f["std"] == pytest.approx(0.5)
    assert f["contrast_0"] == pytest.approx(1.0) and f["contrast_90"] == pytest.approx(1.0)
    assert f["contrast_45"] == pytest.approx(0.0) and f["homogeneity_45"] == pytest.approx(1.0)
    assert f["homogeneity_0"] == pytest.approx(0.5)
    assert f["ASM_0"] == pytest.approx(0.5)  # P(0,1) = P(1,0) = 1/2 -> 2 * 1/4
    assert len(FEATURE_NAMES) == 18


def test_rgb_and_float_inputs_match_grey_uint8():
    grey = _images(0, n=3)
    rgb = np.repeat(grey[..., None], 3, -1)
    assert np.allclose(image_features(grey), image_features(rgb))
    assert np.allclose(image_features(grey), image_features(grey / 255.0))


def test_mmd_of_a_dataset_with_itself_is_zero_and_not_significant():
    f = image_features(_images(1))
    z, = standardise(f)
    m2, p = mmd_test(z, z, gamma=median_gamma(z), n_permutations=200)
    assert m2 == pytest.approx(0.0, abs=1e-12) and p == 1.0


def test_shifted_copy_is_significant():
    a, b = image_features(_images(1)), image_features(_images(2))
    shifted = image_features(_images(1, shift=25))
    m2, p = mmd_matrix([a, b, shifted], n_permutations=300)
    assert p[0, 2] < 0.01 and p[1, 2] < 0.01  # intensity shift
    assert m2[0, 2] > 2 * m2[0, 1]
    assert np.allclose(m2, m2.T) and np.allclose(np.diag(m2), 0)


def test_p_values_of_same_distribution_pairs_are_calibrated():
    # two draws of one generator: p-values ~ uniform, so few below 0.05 and the median near 0.5
    ps = [mmd_matrix([image_features(_images(100 + s, n=25)),
                      image_features(_images(200 + s, n=25))], n_permutations=100)[1][0, 1]
          for s in range(8)]
    assert sum(p < 0.05 for p in ps) <= 2 and np.median(ps) > 0.2


def test_mmd2_by_hand():
    # one point each at distance 1, gamma 1: k(x,x) = k(y,y) = 1, k(x,y) = e^-1
    assert mmd2(np.zeros((1, 1)), np.ones((1, 1)), gamma=1.0) == pytest.approx(2 - 2 / np.e)


def test_mds_separates_the_shifted_dataset():
    a, b = image_features(_images(1)), image_features(_images(2))
    c = image_features(_images(3, shift=60))
    m2, _ = mmd_matrix([a, b, c], n_permutations=0)
    xy = mds_map(m2)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    assert xy.shape == (3, 2) and d[0, 2] > 1.5 * d[0, 1] and d[1, 2] > 1.5 * d[0, 1]
    assert np.allclose(d, np.sqrt(m2), atol=0.02)  # three points embed exactly in 2-D
