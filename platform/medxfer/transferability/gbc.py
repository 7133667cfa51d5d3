"""GBC: Gaussian Bhattacharyya coefficient between per-class Gaussians.

Pandy et al., "Transferability Estimation using Bhattacharyya Class Separability", CVPR 2022
(thesis (seed 004) ref. [129]; not scored in the thesis). Spec section "GBC".
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import svd

from ._validation import check_features, check_labels

GAUSSIANS = ("diagonal", "spherical")


def gbc(features, labels, *, source_logits=None, random_state=None,
        gaussian: str = "diagonal", n_dims: int = 64, min_variance: float = 1e-4) -> float:
    """-sum over ordered class pairs i != j of exp(-D_B(i, j)).

    D_B = 1/8 (mu_i - mu_j)^T S^-1 (mu_i - mu_j) + 1/2 ln(det S / sqrt(det S_i det S_j)),
    S = (S_i + S_j) / 2, with one Gaussian per class fitted on PCA-reduced features.

    The PCA is sklearn's exact one (``PCA(k, svd_solver='full')``: an SVD of the centred
    features in their own dtype) without its sign convention, to which GBC is indifferent
    (class means and variances per component); all class pairs are then scored at once.

    Args:
        features: Shape (N, D).
        labels: Shape (N,); any integer labels (no 0..C-1 requirement).
        source_logits: Unused.
        random_state: Unused (exact PCA; deterministic).
        gaussian: ``"diagonal"`` (per-dimension class variances, default) or ``"spherical"``
            (one variance per class: the mean of its diagonal, det = var^d).
        n_dims: PCA size, reduced to min(n_dims, N, D).
        min_variance: Floor on each class variance, as the authors' code (tf.maximum(var,
            1e-4)), so constant dimensions and single-sample classes stay finite.

    Returns:
        GBC in [-C(C-1), 0]; higher (closer to 0) means better separated classes.
    """
    if gaussian not in GAUSSIANS:
        raise ValueError(f"gbc: gaussian must be one of {GAUSSIANS}; got {gaussian!r}")
    x = check_features(features, "gbc")
    y = check_labels(labels, x.shape[0], "gbc", contiguous=False)
    k = min(n_dims, *x.shape)
    reduced = _pca_scores(x, k).astype(np.float64)
    classes, codes = np.unique(y, return_inverse=True)
    means = np.stack([reduced[codes == c].mean(axis=0) for c in range(classes.size)])
    var = np.stack([np.maximum(reduced[codes == c].var(axis=0), min_variance)
                    for c in range(classes.size)])
    if gaussian == "spherical":
        var = np.repeat(var.mean(axis=1, keepdims=True), k, axis=1)
    log_det = np.log(var).sum(axis=1)  # (C,)
    avg = (var[:, None, :] + var[None, :, :]) / 2  # (C, C, k): S of every pair
    gap = means[:, None, :] - means[None, :, :]
    d_b = (np.sum(gap ** 2 / avg, axis=2) / 8
           + 0.5 * (np.log(avg).sum(axis=2) - 0.5 * (log_det[:, None] + log_det[None, :])))
    np.fill_diagonal(d_b, np.inf)  # i == j is left out
    return float(-np.exp(-d_b).sum())


def _pca_scores(x, k):
    """(N, k) scores of sklearn's exact PCA, up to the sign of each component."""
    centred = x - np.mean(x, axis=0)
    u, s, _ = svd(centred, full_matrices=False, check_finite=False)
    return u[:, :k] * s[:k]
