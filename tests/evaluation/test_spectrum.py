"""Radial PSD (thesis eq. 5.1): sinusoids peak at their frequency, known ring values."""

from __future__ import annotations

import numpy as np
import pytest

from medxfer.evaluation.spectrum import normalised_frequency, radial_psd


@pytest.mark.parametrize("fx, fy", [(3, 0), (0, 7), (3, 4), (6, 8), (5, 12)])
def test_pure_sinusoid_peaks_at_its_frequency(fx, fy):
    # whole cycles per image along x and y (no leakage); radial frequency sqrt(fx^2 + fy^2)
    m = 32
    yy, xx = np.mgrid[0:m, 0:m]
    img = 0.5 + 0.3 * np.sin(2 * np.pi * (fx * xx + fy * yy) / m + 0.4)
    k, psd = radial_psd(img, subtract_mean=True)
    assert len(k) == m // 2 and int(k[np.argmax(psd)]) == round(np.hypot(fx, fy))


def test_constant_image_has_only_dc():
    k, psd = radial_psd(np.full((3, 16, 16), 2.0))
    # |F(0, 0)| = 2 * 256 on the DC ring of one bin: 2 pi * 512
    assert psd[0] == pytest.approx(2 * np.pi * 512) and np.allclose(psd[1:], 0)
    _, centred = radial_psd(np.full((16, 16), 2.0), subtract_mean=True)
    assert np.allclose(centred, 0)


def test_ring_value_is_two_pi_times_the_ring_mean():
    # a cosine along x with f = 4: |F| = 256 / 2 * 2 bins at (0, +-4); the radius-4 ring of a
    # 16x16 grid holds every bin with round(sqrt(u^2 + v^2)) == 4
    m, f = 16, 4
    img = np.cos(2 * np.pi * f * np.arange(m) / m)[None, :].repeat(m, 0)
    v, u = np.meshgrid(np.fft.fftfreq(m) * m, np.fft.fftfreq(m) * m, indexing="ij")
    n_ring = int((np.rint(np.hypot(v, u)) == f).sum())
    _, psd = radial_psd(img)
    assert psd[f] == pytest.approx(2 * np.pi * (2 * m * m / 2) / n_ring)


def test_batched_channels_average_and_normalised_frequency():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 20, 20))
    _, a = radial_psd(x)
    _, b = radial_psd(x.reshape(12, 20, 20))
    assert np.allclose(a, b)
    assert normalised_frequency(np.array([0, 5, 10]), 20).tolist() == [0.0, 0.5, 1.0]


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        radial_psd(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match=">= 4"):
        radial_psd(np.zeros((2, 2)))
