"""Layer-wise CCA similarity of two representations, SVCCA style.

Thesis (seed ``004_43f54b618356cecf.txt``) ch. 3 sec. 3.3.1, eq. 3.1: the activations of the same
layer of two models over ``n`` stimulus images, reshaped from ``(n, p, h, w)`` to
``(n * h * w, p)``, are projected by CCA onto a common space; the layer similarity is the mean of
the canonical correlations (the thesis writes a sum over ``i = 1..p`` and calls it "the average";
we report the mean, in [0, 1]). The thesis subsamples rows so that ``n * h * w ~ 20,000`` and
channels to ``p = 64``, and averages five repeats (:func:`layer_cca`).

Choice (the issue's "SVCCA style", Raghu et al. 2017, https://arxiv.org/abs/1706.05806): each
centred matrix is first reduced (SVD, computed via its Gram matrix) to the leading directions
that explain ``keep_variance`` (default 99%) of its variance, then CCA is solved exactly on those
subspaces: the canonical correlations are the singular values of ``Q_x^T Q_y`` for orthonormal
bases ``Q`` of the reduced column spaces (Björck & Golub 1973), which equals the thesis' SVD of
``Sigma_X^{-1/2} Sigma_XY Sigma_Y^{-1/2}`` without forming inverse square roots. This departs
from the google/svcca ``cca_core`` the thesis used (an epsilon-regularised covariance CCA with no
SVD step); the SVD step drops near-constant directions that make plain CCA ill-conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations of two representations.

    Attributes:
        mean: Mean canonical correlation (thesis eq. 3.1, as a mean), in [0, 1].
        coefs: The canonical correlations, descending, ``(min(k_x, k_y),)``.
        dims: Directions kept by the SVD step, ``(k_x, k_y)``.
    """

    mean: float
    coefs: np.ndarray
    dims: tuple[int, int]


def _reduced_basis(x: np.ndarray, keep_variance: float | None) -> np.ndarray:
    """Orthonormal basis ``(n, k)`` of the centred columns of ``x``: its top principal directions.

    Computed from the ``(p, p)`` Gram matrix (``x^T x = V S^2 V^T``, ``U = x V / S``): one pass
    over the ``n`` rows instead of an ``(n, p)`` SVD, the same subspace. Directions with
    ``s^2 <= 1e-10 s_max^2`` count as rank deficiency.
    """
    lam, vec = np.linalg.eigh(x.T @ x)
    lam, vec = lam[::-1], vec[:, ::-1]
    if lam[0] <= np.finfo(np.float64).tiny:
        raise ValueError("representation is constant (rank 0): CCA is undefined")
    k = int((lam > lam[0] * 1e-10).sum())
    if keep_variance is not None and keep_variance < 1.0:
        frac = np.cumsum(lam[:k]) / np.sum(lam[:k])
        k = int(np.searchsorted(frac, keep_variance - 1e-12) + 1)
    return x @ (vec[:, :k] / np.sqrt(lam[:k]))


def cca(x: np.ndarray, y: np.ndarray, *, keep_variance: float | None = 0.99) -> CCAResult:
    """Canonical correlations of ``x`` and ``y`` after the SVD reduction (module docstring).

    Args:
        x: First representation, ``(n, p)`` (rows are data points, columns variables).
        y: Second representation, ``(n, q)``, rows aligned with ``x``.
        keep_variance: Share of each matrix's variance its SVD step keeps (0 < v <= 1); ``None``
            or 1 keeps every non-degenerate direction (plain CCA).

    Returns:
        :class:`CCAResult`.

    Raises:
        ValueError: Row counts differ, fewer rows than kept directions, NaN/inf values, a
            constant representation, or ``keep_variance`` outside (0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected x (n, p) and y (n, q) with the same n, got {x.shape} and "
                         f"{y.shape}")
    if keep_variance is not None and not 0 < keep_variance <= 1:
        raise ValueError(f"keep_variance must be in (0, 1], got {keep_variance}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("representations contain NaN or inf")
    qx = _reduced_basis(x - x.mean(0), keep_variance)
    qy = _reduced_basis(y - y.mean(0), keep_variance)
    if len(x) <= max(qx.shape[1], qy.shape[1]):
        raise ValueError(f"need more rows ({len(x)}) than kept directions "
                         f"({max(qx.shape[1], qy.shape[1])}); use more stimulus images")
    rho = np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)
    return CCAResult(float(rho.mean()), rho, (qx.shape[1], qy.shape[1]))


def activations_to_matrix(acts: np.ndarray) -> np.ndarray:
    """``(n, p, h, w)`` conv activations (or ``(n, p)``) -> ``(n * h * w, p)`` (thesis 3.3.1)."""
    acts = np.asarray(acts)
    if acts.ndim == 2:
        return acts
    if acts.ndim != 4:
        raise ValueError(f"expected activations (n, p, h, w) or (n, p), got {acts.shape}")
    n, p, h, w = acts.shape
    return acts.transpose(0, 2, 3, 1).reshape(n * h * w, p)


def layer_cca(acts_a: np.ndarray, acts_b: np.ndarray, *, max_rows: int = 20_000,
              max_channels: int = 64, repeats: int = 5, keep_variance: float | None = 0.99,
              seed: int = 0) -> tuple[float, float]:
    """Layer similarity of two models (thesis eq. 3.1 and the sampling of sec. 3.3.1).

    Rows (positions of images) are subsampled to ``max_rows`` and each model's channels to
    ``max_channels``, CCA is computed ``repeats`` times on fresh samples, and the mean
    canonical correlations are averaged. Layers of the same width get the same channel sample
    (ours; the thesis does not say), so a model compared with itself scores 1.

    Args:
        acts_a: Activations of model A, ``(n, p_a, h, w)`` or ``(n, p_a)``.
        acts_b: Activations of model B at the same layer, ``(n, p_b, h', w')`` with the same
            ``n * h * w`` rows.
        max_rows: Rows sampled per repeat (thesis: ~20,000).
        max_channels: Channels sampled per model and repeat (thesis: 64).
        repeats: Repeats averaged (thesis: 5); 1 when nothing is subsampled.
        keep_variance: See :func:`cca`.
        seed: Sampling seed.

    Returns:
        ``(mean, std)`` over the repeats of the mean canonical correlation.
    """
    x, y = activations_to_matrix(acts_a), activations_to_matrix(acts_b)
    if len(x) != len(y):
        raise ValueError(f"the two layers give {len(x)} and {len(y)} rows; compare layers with "
                         "the same spatial size")
    rng = np.random.default_rng(seed)
    sampled = len(x) > max_rows or x.shape[1] > max_channels or y.shape[1] > max_channels
    values = []
    for _ in range(repeats if sampled else 1):
        rows = rng.choice(len(x), max_rows, replace=False) if len(x) > max_rows else slice(None)
        cx = rng.choice(x.shape[1], max_channels, replace=False) \
            if x.shape[1] > max_channels else slice(None)
        # same widths: the same channel indices, so a model compared with itself scores 1
        cy = cx if y.shape[1] == x.shape[1] else rng.choice(y.shape[1], max_channels,
                                                            replace=False) \
            if y.shape[1] > max_channels else slice(None)
        values.append(cca(x[rows][:, cx], y[rows][:, cy], keep_variance=keep_variance).mean)
    return float(np.mean(values)), float(np.std(values))
