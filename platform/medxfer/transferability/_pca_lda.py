"""NCTI's PCA and LDA without the estimator overhead, equal to scikit-learn's to the last bit.

The reference NCTI (spec "NCTI"; thesis, seed 004, Table 6.2/6.3) calls
``PCA(64, random_state=42).fit_transform`` and ``LinearDiscriminantAnalysis``; on a zoo's
features (e.g. 1,100 x 512) the estimators' input validation, parameter checks, the PCA's
total-variance pass and the LDA's ``np.add.at`` class means cost about a fifth of the metric.
:func:`randomized_pca` and :func:`lda_svd` make the same numerical calls in the same order
(same random draws, same LAPACK routines, same float dtype), so their results are identical to
the estimators'; ``tests/transferability/test_pca_lda.py`` checks that against scikit-learn.
Only the solver branches NCTI reaches are here: :func:`randomized_pca` returns None where
scikit-learn's ``svd_solver='auto'`` would not pick the randomized solver (the caller then uses
``PCA`` itself).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.special import expit
from sklearn.utils.extmath import softmax

N_OVERSAMPLES = 10  # sklearn PCA's default
LDA_TOL = 1e-4  # sklearn LinearDiscriminantAnalysis' default


def picks_randomized(n: int, d: int, k: int) -> bool:
    """Whether ``PCA(k, svd_solver='auto')`` on dense (n, d) data uses the randomized solver."""
    if d <= 1_000 and n >= 10 * d:
        return False  # covariance_eigh
    if max(n, d) <= 500:
        return False  # full
    return 1 <= k < 0.8 * min(n, d)


def randomized_pca(x: np.ndarray, k: int, random_state: int
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """``PCA(k, random_state=random_state).fit_transform(x)`` and its ``explained_variance_``.

    Args:
        x: Shape (N, D), float32 or float64, finite (not modified).
        k: Number of components.
        random_state: Seed of the Gaussian test matrix (``np.random.RandomState``).

    Returns:
        ``(reduced, explained_variance)`` of shapes (N, k) and (k,) in ``x``'s dtype, or None
        where scikit-learn would not use its randomized solver for this shape or dtype.
    """
    n, d = x.shape
    if x.dtype not in (np.float32, np.float64) or not picks_randomized(n, d, k):
        return None
    xc = x - np.mean(x, axis=0)
    n_iter = 7 if k < 0.1 * min(n, d) else 4
    transpose = n < d
    m = xc.T if transpose else xc
    q = _range_finder(m, k + N_OVERSAMPLES, n_iter, np.random.RandomState(random_state))
    u_hat, s, vt = scipy.linalg.svd(q.T @ m, full_matrices=False, lapack_driver="gesdd")
    u = q @ u_hat
    if transpose:
        u, s, vt = vt[:k, :].T, s[:k], u[:, :k].T
    else:
        u, s, vt = u[:, :k], s[:k], vt[:k, :]
    # svd_flip(u, vt, u_based_decision=False): the largest |entry| of each row of vt positive.
    rows = np.arange(vt.shape[0])
    signs = np.sign(vt[rows, np.argmax(np.abs(vt), axis=1)])
    u *= signs[np.newaxis, :]
    u *= s
    return u, (s**2) / (n - 1)


def _range_finder(m: np.ndarray, size: int, n_iter: int, rng: np.random.RandomState
                  ) -> np.ndarray:
    """sklearn's ``_randomized_range_finder`` with the LU power-iteration normaliser."""
    q = rng.normal(size=(m.shape[1], size))
    if m.dtype == np.float32:
        q = q.astype(np.float32, copy=False)
    normalise = (lambda a: scipy.linalg.lu(a, permute_l=True, check_finite=False)[0]) \
        if n_iter > 2 else (lambda a: a)
    for _ in range(n_iter):
        q = normalise(m @ q)
        q = normalise(m.T @ q)
    return scipy.linalg.qr(m @ q, mode="economic", check_finite=False)[0]


def lda_svd(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``LinearDiscriminantAnalysis(solver='svd')``: ``fit_transform(x, y)`` and
    ``predict_proba(x)``.

    Args:
        x: Shape (N, F), float32 or float64, finite.
        y: Shape (N,), int labels 0..C-1, every class present (C >= 2).

    Returns:
        ``(embedded, proba)``: shapes (N, min(rank, C - 1)) and (N, C).
    """
    n, f = x.shape
    cnt = np.bincount(y)
    c = cnt.shape[0]
    if n == c:
        raise ValueError("The number of samples must be more than the number of classes.")
    priors = cnt.astype(x.dtype) / float(n)
    means = np.stack([x[y == k].sum(axis=0) for k in range(c)])  # rows in order, as np.add.at
    means /= cnt[:, None]
    xbar = priors @ means
    xc = np.concatenate([x[y == k] - means[k, :] for k in range(c)], axis=0)
    std = np.std(xc, axis=0)
    std[std == 0] = 1.0
    fac = np.asarray(1.0 / n, dtype=x.dtype)
    _, s, vt = scipy.linalg.svd(np.sqrt(fac) * (xc / std), full_matrices=False)
    rank = np.sum((s > LDA_TOL).astype(np.int32))
    scalings = (vt[:rank, :] / std).T / s[:rank]
    between = ((np.sqrt((n * priors) * (1.0 / (c - 1)))) * (means - xbar).T).T @ scalings
    _, s, vt = scipy.linalg.svd(between, full_matrices=False)
    rank = np.sum((s > LDA_TOL * s[0]).astype(np.int32))
    scalings = scalings @ vt.T[:, :rank]
    coef = (means - xbar) @ scalings
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef = coef @ scalings.T
    intercept -= xbar @ coef.T
    embedded = ((x - xbar) @ scalings)[:, :min(c - 1, f)]
    if c == 2:
        w = np.asarray(coef[1, :] - coef[0, :], dtype=x.dtype).reshape(1, -1)
        b = np.asarray(intercept[1] - intercept[0], dtype=x.dtype).reshape(1)
        p = expit((x @ w.T + b).reshape(-1))
        return embedded, np.stack([1 - p, p], axis=1)
    return embedded, softmax(x @ coef.T + intercept)
