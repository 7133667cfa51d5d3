"""Radially integrated power spectral density (PSD) of images or input-gradient maps.

Thesis (seed ``004_43f54b618356cecf.txt``) ch. 5 sec. 5.1.3, eq. 5.1:
``PSD(w_k) = integral_0^{2 pi} |F(X)(w_k cos phi, w_k sin phi)| d phi`` for radial frequencies
``w_k``, ``k = 0 .. M/2 - 1`` (``M`` the image side). Applied to images it shows their spectral
content; applied to the gradient of the loss with respect to the input it shows a model's
spectral "learning priority" (sec. 5.1.3, after its ref. [117]).

Discretisation (ours): the centred 2-D DFT magnitude is binned into rings of integer radius
``k = round(sqrt(u^2 + v^2))`` (``u, v`` in cycles per image) and the angular integral is
``2 pi`` times the ring's mean, so a ring's value does not grow with its pixel count. As eq. 5.1
writes it, the magnitude ``|F|`` is integrated, not ``|F|^2``. Frequencies are returned in cycles
per image (``k``) and as a fraction of the Nyquist frequency (``k / (M / 2)``).
"""

from __future__ import annotations

import numpy as np


def _rings(h: int, w: int) -> np.ndarray:
    """Integer radius (cycles per image) of each centred DFT bin, ``(h, w)``."""
    v = np.fft.fftshift(np.fft.fftfreq(h)) * h
    u = np.fft.fftshift(np.fft.fftfreq(w)) * w
    return np.rint(np.hypot(v[:, None], u[None, :])).astype(np.int64)


def radial_psd(images: np.ndarray, *, subtract_mean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 5.1 for each image, averaged over images (and channels).

    Args:
        images: ``(H, W)``, ``(n, H, W)`` or ``(n, C, H, W)`` real arrays (square images give the
            thesis' ``k = 0 .. M/2 - 1``; for ``H != W`` the shorter side sets ``M``).
        subtract_mean: Remove each image's mean first (drops the DC term's dominance).

    Returns:
        ``(k, psd)``: radial frequencies ``(M // 2,)`` in cycles per image and the mean PSD
        ``(M // 2,)``.

    Raises:
        ValueError: Fewer than 2 dimensions, an image side below 4, or NaN/inf values.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected images (..., H, W), got shape {x.shape}")
    h, w = x.shape[-2:]
    if min(h, w) < 4:
        raise ValueError(f"image side must be >= 4, got {h}x{w}")
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or inf")
    x = x.reshape(-1, h, w)
    if subtract_mean:
        x = x - x.mean(axis=(1, 2), keepdims=True)
    mag = np.abs(np.fft.fftshift(np.fft.fft2(x), axes=(1, 2))).mean(0)
    m = min(h, w) // 2
    rings = _rings(h, w).ravel()
    keep = rings < m
    sums = np.bincount(rings[keep], weights=mag.ravel()[keep], minlength=m)
    counts = np.bincount(rings[keep], minlength=m)
    return np.arange(m), 2 * np.pi * sums / np.maximum(counts, 1)


def normalised_frequency(k: np.ndarray, side: int) -> np.ndarray:
    """``k`` (cycles per image) as a fraction of the Nyquist frequency ``side / 2``."""
    return np.asarray(k, dtype=np.float64) / (side / 2)
