"""Neighbourhood components analysis: sklearn's fit, with a faster loss and gradient.

LP (spec "LP" step 1) fits ``NeighborhoodComponentsAnalysis(n_components=50, random_state=42)``
with sklearn's defaults. :func:`nca_transform` runs the same fit: sklearn's own initialisation
(PCA for the thesis' shapes), the same ``scipy.optimize.minimize`` L-BFGS-B call (tol, max_iter,
float32 parameters for float32 features) and a loss/gradient function that repeats sklearn's
``_loss_grad_lbfgs`` operation for operation, so the optimiser sees the same numbers and takes
the same steps. What is faster: the N x N work arrays are allocated once and updated in place,
and the squared pairwise distances skip ``pairwise_distances``' validation and per-block
copies while forming the same blocks with the same products (for float32 input sklearn
upcasts blocks of rows to float64 and rounds the result back to float32; so does this).

Goldberger et al., "Neighbourhood Components Analysis", NIPS 2004; sklearn reference:
``sklearn/neighbors/_nca.py`` (1.9.1).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state


def nca_transform(x: np.ndarray, y: np.ndarray, *, n_components: int, random_state: int,
                  max_iter: int = 50, tol: float = 1e-5) -> np.ndarray:
    """``NeighborhoodComponentsAnalysis(n_components, random_state).fit(x, y).transform(x)``.

    Args:
        x: Shape (N, D), float32 or float64 (kept: the dtype matters, spec pitfall 9).
        y: Shape (N,), integer labels.
        n_components: Output size (<= D).
        random_state: Seed of sklearn's initialisation (its PCA, when init resolves to 'pca').
        max_iter: L-BFGS-B iterations (sklearn's default 50).
        tol: L-BFGS-B tolerance (sklearn's default 1e-5).

    Returns:
        Shape (N, n_components): the embedded samples.
    """
    codes = LabelEncoder().fit_transform(y)
    start = _initial_transformation(x, codes, n_components, check_random_state(random_state))
    same_class = (codes[:, None] == codes[None, :]).astype(x.dtype)
    result = minimize(_LossGrad(x, same_class), np.ravel(start), method="L-BFGS-B",
                      jac=True, tol=tol, options={"maxiter": max_iter})
    components = result.x.reshape(-1, x.shape[1])
    return np.dot(x, components.T)


def _initial_transformation(x, codes, n_components, rng):
    """sklearn's init='auto': LDA scalings, PCA components or the identity, as it decides."""
    n_samples, n_features = x.shape
    n_classes = np.unique(codes).size
    if n_components <= min(n_features, n_classes - 1):
        lda = LinearDiscriminantAnalysis(n_components=n_components).fit(x, codes)
        return lda.scalings_.T[:n_components]
    if n_components < min(n_features, n_samples):
        return PCA(n_components=n_components, random_state=rng).fit(x).components_
    return np.eye(n_components, n_features)


class _LossGrad:
    """Minus the NCA objective and its gradient: sklearn's ``_loss_grad_lbfgs`` with sign -1.

    The same operations in the same order, so the numbers are sklearn's; the N x N work
    arrays are allocated once and updated in place.

    Args:
        x: Shape (N, D).
        same_class: Shape (N, N), 1 where two samples share a label, else 0 (x's dtype).
    """

    def __init__(self, x, same_class):
        n = x.shape[0]
        self.x, self.same_class = x, same_class
        self.p_ij = np.empty((n, n), x.dtype)
        self.masked = np.empty((n, n), x.dtype)
        self.weighted_sym = np.empty((n, n), x.dtype)

    def __call__(self, transformation):
        """Args: transformation: shape (n_components * D,). Returns (loss, gradient)."""
        x, p_ij, masked = self.x, self.p_ij, self.masked
        transformation = transformation.reshape(-1, x.shape[1])
        embedded = np.dot(x, transformation.T)  # (N, n_components)
        _sq_distances(embedded, out=p_ij)
        np.fill_diagonal(p_ij, np.inf)
        np.negative(p_ij, out=p_ij)
        # Row softmax, as sklearn.utils.extmath.softmax.
        p_ij -= np.max(p_ij, axis=1).reshape(-1, 1)
        np.exp(p_ij, out=p_ij)
        p_ij /= np.sum(p_ij, axis=1).reshape(-1, 1)

        np.multiply(p_ij, self.same_class, out=masked)
        p = np.sum(masked, axis=1, keepdims=True)  # (N, 1)
        loss = np.sum(p)
        p_ij *= p
        masked -= p_ij  # sklearn's weighted_p_ij
        np.add(masked, masked.T, out=self.weighted_sym)
        np.fill_diagonal(self.weighted_sym, -masked.sum(axis=0))
        gradient = 2 * embedded.T.dot(self.weighted_sym).dot(x)
        return -1.0 * loss, -1.0 * gradient.ravel()


def _sq_distances(embedded, out):
    """Squared Euclidean distances between rows into ``out``, as sklearn's ``pairwise_distances(
    embedded, squared=True)`` computes them (``sklearn/metrics/pairwise.py``).

    float32 rows: sklearn upcasts blocks of rows to float64, forms -2 <a, b> + |a|^2 + |b|^2 per
    block with a general product, rounds to float32 and mirrors the blocks below the diagonal;
    the same blocks and products are used here (a product's rounding depends on its shape).
    float64 rows: one symmetric product X X^T. Negative residues are clipped to 0 and the
    diagonal is 0.
    """
    n = embedded.shape[0]
    if embedded.dtype == np.float64:
        norms = np.einsum("ij,ij->i", embedded, embedded)[:, None]
        np.matmul(embedded, embedded.T, out=out)
        out *= -2
        out += norms
        out += norms.T
    else:
        wide = embedded.astype(np.float64)
        step = _upcast_batch_size(*embedded.shape)
        starts = range(0, n, step)
        for i, a in enumerate(starts):
            rows = slice(a, min(a + step, n))
            left = wide[rows]
            left_norms = np.einsum("ij,ij->i", left, left)[:, None]
            for j, b in enumerate(starts):
                cols = slice(b, min(b + step, n))
                if j < i:  # mirrored, as sklearn does for X is Y
                    out[rows, cols] = out[cols, rows].T
                    continue
                right = wide[cols].copy()  # a separate array: a general product, not X X^T
                block = left @ right.T
                block *= -2
                block += left_norms
                block += np.einsum("ij,ij->i", right, right)[None, :]
                out[rows, cols] = block
    np.maximum(out, 0, out=out)
    np.fill_diagonal(out, 0)
    return out


def _upcast_batch_size(n, n_features):
    """Rows per block of sklearn's ``_euclidean_distances_upcast`` for dense X is Y."""
    maxmem = max(((n + n) * n_features + n * n) / 10, 10 * 2**17)
    tmp = 2 * n_features
    return max(int((-tmp + np.sqrt(tmp**2 + 4 * maxmem)) / 2), 1)
