"""GBC: Gaussian Bhattacharyya coefficient between per-class Gaussians.

Pandy et al., "Transferability Estimation using Bhattacharyya Class Separability", CVPR 2022
(thesis (seed 004) ref. [129]; not scored in the thesis). Spec section "GBC".
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from ._validation import check_features, check_labels

GAUSSIANS = ("diagonal", "spherical")


def gbc(features, labels, *, source_logits=None, random_state=None,
        gaussian: str = "diagonal", n_dims: int = 64, min_variance: float = 1e-4) -> float:
    """-sum over ordered class pairs i != j of exp(-D_B(i, j)).

    D_B = 1/8 (mu_i - mu_j)^T S^-1 (mu_i - mu_j) + 1/2 ln(det S / sqrt(det S_i det S_j)),
    S = (S_i + S_j) / 2, with one Gaussian per class fitted on PCA-reduced features.

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
    reduced = PCA(n_components=k, svd_solver="full").fit_transform(x).astype(np.float64)
    classes = np.unique(y)
    means = np.stack([reduced[y == c].mean(axis=0) for c in classes])
    var = np.stack([np.maximum(reduced[y == c].var(axis=0), min_variance) for c in classes])
    if gaussian == "spherical":
        var = np.repeat(var.mean(axis=1, keepdims=True), k, axis=1)
    log_var = np.log(var)
    total = 0.0
    for i in range(classes.size):
        for j in range(classes.size):
            if i == j:
                continue
            avg = (var[i] + var[j]) / 2
            d_b = (np.sum((means[i] - means[j]) ** 2 / avg) / 8
                   + 0.5 * (np.sum(np.log(avg)) - 0.5 * (log_var[i].sum() + log_var[j].sum())))
            total += np.exp(-d_b)
    return float(-total)
