"""Full-covariance Gaussian mixture EM: sklearn's ``GaussianMixture`` defaults, computed faster.

NLEEP (spec "NLEEP" step 2) fits ``GaussianMixture(n_components=K)`` with every other setting at
sklearn's default: full covariances, k-means initialisation, one init, max_iter 100, tol 1e-3 on
the change of the lower bound (the mean log-likelihood), reg_covar 1e-6. This module runs the
same EM from the same start (sklearn's own ``KMeans`` with the same random state, so the
initial labels are identical) with the same stopping rule, and returns the same posteriors to
rounding. It is faster because:

* a covariance is accumulated only over the samples whose responsibility is nonzero (exact:
  the others add exact zeros; with tens of samples per component in hundreds of dimensions the
  responsibilities are nearly one-hot, so this skips most of the work), with a symmetric
  rank-k update (half a general product);
* the Mahalanobis distances come from a triangular solve with the covariance's Cholesky factor
  (half the flops of sklearn's dense product with the precision factor, and no inversion);
* P(z|x) is the final E-step's responsibilities; sklearn repeats that E-step in
  ``predict_proba``.

sklearn reference: ``sklearn/mixture/_gaussian_mixture.py`` and ``_base.py`` (1.9.1).
"""

from __future__ import annotations

import math
import warnings

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
    weights, means, chol = _m_step(x, resp, reg_covar)
    weights /= n  # sklearn's initialisation divides by N, its M-step by the weights' sum
    lower_bound, converged = -np.inf, False
    for _ in range(max_iter):
        previous = lower_bound
        log_norm, log_resp = _e_step(x, weights, means, chol)
        weights, means, chol = _m_step(x, np.exp(log_resp), reg_covar)
        weights /= weights.sum()
        lower_bound = log_norm.mean()
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    if not converged:
        warnings.warn("Best performing initialization did not converge. Try different init "
                      "parameters, or increase max_iter, tol, or check for degenerate data.",
                      ConvergenceWarning, stacklevel=2)
    _, log_resp = _e_step(x, weights, means, chol)
    return np.exp(log_resp)


def _m_step(x, resp, reg_covar):
    """Weights (unnormalised counts), means and lower Cholesky factors of the covariances.

    Args:
        x: Shape (N, D).
        resp: Shape (N, K), responsibilities.

    Returns:
        ``(nk (K,), means (K, D), chol (K, D, D))``; ``chol[k]`` is lower triangular with
        ``chol[k] @ chol[k].T = cov_k + reg_covar I``.
    """
    d = x.shape[1]
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = (resp.T @ x) / nk[:, None]
    chol = np.empty((resp.shape[1], d, d))
    for k in range(resp.shape[1]):
        rows = np.flatnonzero(resp[:, k])
        if rows.size:
            scaled = np.sqrt(resp[rows, k])[:, None] * (x[rows] - means[k])  # (m, D)
            # scaled.T is Fortran-ordered (D, m): syrk forms scaled.T @ scaled without a copy.
            cov = blas.dsyrk(1.0 / nk[k], scaled.T, trans=0, lower=1)
        else:  # an empty component: sklearn's covariance is then reg_covar I
            cov = np.zeros((d, d), order="F")
        cov.flat[:: d + 1] += reg_covar
        factor, info = lapack.dpotrf(cov, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise ValueError(_ILL_DEFINED)
        chol[k] = factor
    return nk, means, chol


def _e_step(x, weights, means, chol):
    """Per-sample log-likelihood and log-responsibilities.

    Returns:
        ``(log_norm (N,), log_resp (N, K))``: log sum_k pi_k N(x | mu_k, S_k), and
        log pi_k N(x | mu_k, S_k) minus it.
    """
    n, d = x.shape
    log_prob = np.empty((n, means.shape[0]))
    for k in range(means.shape[0]):
        # (x - mu) S^-1 (x - mu)^T = |L^-1 (x - mu)|^2: one triangular solve per component.
        z = solve_triangular(chol[k], (x - means[k]).T, lower=True, overwrite_b=True,
                             check_finite=False)
        maha = np.einsum("ij,ij->j", z, z)
        log_det = -np.log(np.diagonal(chol[k])).sum()  # log det of the precision's factor
        log_prob[:, k] = -0.5 * (d * math.log(2 * math.pi) + maha) + log_det
    log_prob += np.log(weights)
    peak = log_prob.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(log_prob - peak).sum(axis=1)) + peak[:, 0]
    return log_norm, log_prob - log_norm[:, None]
