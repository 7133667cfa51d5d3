"""SFDA: self-challenging Fisher discriminant analysis.

Shao et al., "Not All Models Are Equal: Predicting Model Transferability in a Self-challenging
Fisher Space", ECCV 2022. Spec section "SFDA", pitfall 6; thesis (seed 004) Table 6.2/6.3
baseline.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ._validation import check_features, check_labels


def sfda(features, labels, *, source_logits=None, random_state=None) -> float:
    """Mean true-class probability of a shrinkage-LDA refit on confidence-mixed features.

    The reference solves a generalised eigenproblem and keeps every eigenvector, so its
    classifier is exactly shrinkage-LDA with the shrunk within-class covariance (pitfall 6):
    this computes that classifier in closed form with one Cholesky factorisation per stage.
    Posteriors are softened by a second softmax before ConfMix; stage 2 reuses stage 1's
    shrinkage. Unlike the reference, the caller's array is never overwritten.

    Args:
        features: Shape (N, D). The mixed features of stage 2 are stored in this dtype (as the
            reference's in-place update does); the algebra runs in float64 as np.cov does.
        labels: Shape (N,), classes 0..C-1.
        source_logits: Unused.
        random_state: Unused (deterministic).

    Returns:
        SFDA score in [0, 1]; higher is better. 1.0 whenever the classes are linearly
        separable (always when N < D).
    """
    x = check_features(features, "sfda")
    y = check_labels(labels, x.shape[0], "sfda")
    n = y.shape[0]
    num_classes = int(y.max()) + 1

    prob, lam, means = _shrinkage_lda_proba(x, y, num_classes, shrinkage=None)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)  # "soften"
    others = (means.sum(axis=0) - means) / (num_classes - 1)  # mean of the other classes' means

    mixed = x.copy()  # same dtype as the input: the reference mixes in place
    p_true = prob[np.arange(n), y][:, None]
    mixed[...] = p_true * x + (1 - p_true) * others[y]

    prob2, _, _ = _shrinkage_lda_proba(mixed, y, num_classes, shrinkage=lam)
    return float(prob2[np.arange(n), y].sum() / n)


def _shrinkage_lda_proba(x, y, num_classes, shrinkage):
    """Posteriors of LDA with covariance (1-lam) Sw + lam tr(Sw)/D I.

    Returns (proba, lam, means).
    """
    x64 = x.astype(np.float64)
    n, d = x64.shape
    counts = np.bincount(y, minlength=num_classes)
    priors = counts / n
    means = np.zeros((num_classes, d))
    np.add.at(means, y, x64)
    means /= counts[:, None]
    centred = x64 - means[y]
    sw = centred.T @ centred / n  # = sum_c prior_c * biased cov_c
    if shrinkage is None:
        shrinkage = max(np.exp(-5 * _largest_eigenvalue(sw)), 1e-10)
    shrunk = (1.0 - shrinkage) * sw
    shrunk.flat[:: d + 1] += shrinkage * np.trace(sw) / d
    coef = cho_solve(cho_factor(shrunk), means.T).T  # M Sw_shrunk^{-1} = M V V^T
    intercept = -0.5 * np.sum(means * coef, axis=1) + np.log(priors)
    scores = x64 @ coef.T + intercept
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores, shrinkage, means


def _largest_eigenvalue(a, iterations=3):
    """Reference's paired power iteration from the row sums (spec "SFDA" stage 1)."""
    x = a.sum(axis=1)
    for _ in range(iterations):
        t = a @ x
        yv = t / np.linalg.norm(t, 2)
        t = a @ yv
        x = t / np.linalg.norm(t, 2)
    return x @ a @ yv
