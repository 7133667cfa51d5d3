"""Full-covariance Gaussian mixture EM: sklearn's ``GaussianMixture`` defaults, computed faster.

NLEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021; spec "NLEEP" step 2) fits
``GaussianMixture(n_components=K)`` with every other setting at sklearn's default: full
covariances, k-means initialisation, one init, max_iter 100, tol 1e-3 on the change of the
lower bound (the mean log-likelihood), reg_covar 1e-6. This module runs the same EM from the
same start (sklearn's own ``KMeans`` with the same random state, so the initial labels are
identical) with the same stopping rule, and returns the same posteriors to rounding. It is
faster because:

* a covariance is accumulated only over the samples whose responsibility is nonzero (exact:
  the others add exact zeros). With tens of samples per component in hundreds of dimensions
  (NLEEP: 5 components per class of ~100 samples) the responsibilities are nearly one-hot, so
  most samples drop out;
* when m <= D/2 samples remain, the covariance is reg_covar I plus a rank-m term, and is
  kept factored in that form (an orthonormal basis of the samples' span and the inverse of
  an m x m Cholesky factor): Mahalanobis distances then cost O(N D m) instead of O(N D^2).
  Otherwise the full covariance comes from a symmetric rank-k update and its Cholesky
  factor, and the distances from one triangular solve (half the flops of sklearn's product
  with the inverted factor, and no inversion);
* P(z|x) is the final E-step's responsibilities; sklearn repeats that E-step in
  ``predict_proba``.

sklearn reference: ``sklearn/mixture/_gaussian_mixture.py`` and ``_base.py`` (1.9.1).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy.linalg import blas, lapack, solve_triangular
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

_ILL_DEFINED = ("Fitting the mixture model failed because some components have ill-defined "
                "empirical covariance (for instance caused by singleton or collapsed samples). "
                "Try to decrease the number of components, increase reg_covar, or scale the "
                "input data.")


def gmm_posteriors(x: np.ndarray, n_components: int, random_state: np.random.RandomState, *,
                   tol: float = 1e-3, max_iter: int = 100, reg_covar: float = 1e-6) -> np.ndarray:
    """P(z|x) of every sample after fitting a full-covariance GMM with k-means initialisation.

    Equals ``GaussianMixture(n_components, random_state=random_state).fit(x).predict_proba(x)``
    to rounding (same start, same updates, same stopping rule).

    Args:
        x: Shape (N, D), float64.
        n_components: K, the number of mixture components (K <= N).
        random_state: Drawn from by ``KMeans`` exactly as by sklearn's initialisation.
        tol: Stop when the mean log-likelihood changes by less than this.
        max_iter: Most EM iterations.
        reg_covar: Added to every covariance's diagonal.

    Returns:
        Shape (N, K): posteriors, rows summing to 1.

    Raises:
        ValueError: a covariance is not positive definite (sklearn's message).
    """
    n = x.shape[0]
    labels = KMeans(n_clusters=n_components, n_init=1, random_state=random_state).fit(x).labels_
    resp = np.zeros((n, n_components))
    resp[np.arange(n), labels] = 1.0
    weights, means, factors = _m_step(x, resp, reg_covar)
    weights /= n  # sklearn's initialisation divides by N, its M-step by the weights' sum
    lower_bound, converged = -np.inf, False
    for _ in range(max_iter):
        previous = lower_bound
        log_norm, log_resp = _e_step(x, weights, means, factors)
        weights, means, factors = _m_step(x, np.exp(log_resp), reg_covar)
        weights /= weights.sum()
        lower_bound = log_norm.mean()
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    if not converged:
        warnings.warn("Best performing initialization did not converge. Try different init "
                      "parameters, or increase max_iter, tol, or check for degenerate data.",
                      ConvergenceWarning, stacklevel=2)
    _, log_resp = _e_step(x, weights, means, factors)
    return np.exp(log_resp)


class _Factor(NamedTuple):
    """One component's covariance S = B (L L^T) B^T + reg (I - B B^T), factored.

    Dense (``basis`` None): ``inner`` is the lower (D, D) Cholesky factor L of S itself, and
    distances come from a triangular solve. Low rank: the covariance is accumulated over
    m <= D/2 samples, so S is reg I plus a rank-m term in the span of the (D, m) orthonormal
    ``basis``; ``inner`` is L^-1 for the (m, m) Cholesky factor L of S restricted to that
    span. Either way S is the same matrix as sklearn's. ``log_det`` is -1/2 log det S, the
    log-determinant of a precision Cholesky factor (sklearn's ``log_det``).
    """

    inner: np.ndarray
    basis: np.ndarray | None
    log_det: float
    reg: float

    def mahalanobis(self, centred: np.ndarray) -> np.ndarray:
        """(x - mu) S^-1 (x - mu)^T for the rows of ``centred`` (N, D); shape (N,)."""
        if self.basis is None:  # |L^-1 (x - mu)|^2: one triangular solve
            z = solve_triangular(self.inner, centred.T, lower=True, overwrite_b=True,
                                 check_finite=False)
            return np.einsum("ij,ij->j", z, z)
        # numpy products only: alternating numpy's and scipy's BLAS (two thread pools)
        # makes both spin against each other when threads outnumber idle cores.
        inside = centred @ self.basis  # (N, m): coordinates in the span
        outside = centred - inside @ self.basis.T  # the rest, explicitly (no cancellation)
        z = inside @ self.inner.T
        return np.einsum("ij,ij->i", z, z) + np.einsum("ij,ij->i", outside, outside) / self.reg


def _m_step(x, resp, reg_covar):
    """Weights (unnormalised counts), means and factored covariances.

    Args:
        x: Shape (N, D).
        resp: Shape (N, K), responsibilities.

    Returns:
        ``(nk (K,), means (K, D), factors)``, one :class:`_Factor` per component of
        cov_k + reg_covar I, cov_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / nk_k.
    """
    d = x.shape[1]
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = (resp.T @ x) / nk[:, None]
    factors = []
    for k in range(resp.shape[1]):
        rows = np.flatnonzero(resp[:, k])
        scaled = np.sqrt(resp[rows, k])[:, None] * (x[rows] - means[k])  # (m, D)
        if 0 < rows.size <= d // 2:
            factors.append(_low_rank_factor(scaled, nk[k], reg_covar))
            continue
        if rows.size:
            # scaled.T is Fortran-ordered (D, m): syrk forms scaled.T @ scaled without a copy.
            cov = blas.dsyrk(1.0 / nk[k], scaled.T, trans=0, lower=1)
        else:  # an empty component: sklearn's covariance is then reg_covar I
            cov = np.zeros((d, d), order="F")
        cov.flat[:: d + 1] += reg_covar
        chol, info = lapack.dpotrf(cov, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise ValueError(_ILL_DEFINED)
        factors.append(_Factor(chol, None, -np.log(np.diagonal(chol)).sum(), reg_covar))
    return nk, means, factors


def _low_rank_factor(scaled, nk, reg_covar):
    """:class:`_Factor` of scaled^T scaled / nk + reg I for (m, D) ``scaled``, m < D."""
    m, d = scaled.shape
    basis, r = np.linalg.qr(scaled.T)  # scaled^T = Q R: cov = Q (R R^T / nk) Q^T
    middle = r @ r.T / nk
    middle.flat[:: m + 1] += reg_covar
    try:
        chol = np.linalg.cholesky(middle)
    except np.linalg.LinAlgError:
        raise ValueError(_ILL_DEFINED) from None
    log_det = -np.log(np.diagonal(chol)).sum() - 0.5 * (d - m) * math.log(reg_covar)
    return _Factor(np.linalg.inv(chol), basis, log_det, reg_covar)


def _e_step(x, weights, means, factors):
    """Per-sample log-likelihood and log-responsibilities.

    Returns:
        ``(log_norm (N,), log_resp (N, K))``: log sum_k pi_k N(x | mu_k, S_k), and
        log pi_k N(x | mu_k, S_k) minus it.
    """
    n, d = x.shape
    log_prob = np.empty((n, means.shape[0]))
    for k, factor in enumerate(factors):
        maha = factor.mahalanobis(x - means[k])
        log_prob[:, k] = -0.5 * (d * math.log(2 * math.pi) + maha) + factor.log_det
    log_prob += np.log(weights)
    peak = log_prob.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(log_prob - peak).sum(axis=1)) + peak[:, 0]
    return log_norm, log_prob - log_norm[:, None]
