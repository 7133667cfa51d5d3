"""NLEEP: LEEP with a Gaussian mixture on PCA-reduced features as the "source head".

Li et al., "Ranking Neural Checkpoints", CVPR 2021. Spec section "NLEEP", pitfalls 3-4;
thesis (seed 004) Table 6.2/6.3 baseline.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._gmm import gmm_posteriors
from ._validation import check_features, check_labels, check_min

CONVENTIONS = ("thesis", "paper")


def nleep(features, labels, *, source_logits=None, random_state=None,
          component_ratio: int = 5, convention: str = "thesis") -> float:
    """Mean probability of the true label under P(y|x) = sum_z P(z|x) P(y|z), z a GMM component.

    Stochastic through the GMM's k-means initialisation. The reference leaves the GMM's
    random_state at None, i.e. NumPy's global RNG; ``random_state=s`` gives the reference's
    result after ``np.random.seed(s)``, without reading or changing the global RNG.

    The reference's two sklearn steps are computed faster, with equal values to rounding: the
    exact PCA from one eigendecomposition of the smaller Gram matrix instead of an SVD of the
    data (the scores differ only by the signs of components, to which k-means and a
    full-covariance GMM are indifferent), and the GMM by :func:`._gmm.gmm_posteriors` (sklearn's
    initialisation, EM updates and stopping rule).

    Args:
        features: Shape (N, D). Computed on a float64 copy (float32 GMMs can fail, pitfall 4).
        labels: Shape (N,), classes 0..C-1.
        source_logits: Unused.
        random_state: int or ``np.random.RandomState`` for the GMM. None draws a fresh seed
            from the OS (the reference's unseeded behaviour, without touching global state).
        component_ratio: GMM components per class (5 in the reference).
        convention: ``"thesis"`` (default): mean probability, no log (pitfall 3).
            ``"paper"``: mean log-probability, as the NLEEP paper (<= 0).

    Returns:
        NLEEP score, in [0, 1] for the thesis convention; higher is better.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"nleep: convention must be one of {CONVENTIONS}; got {convention!r}")
    x = check_features(features, "nleep").astype(np.float64)
    y = check_labels(labels, x.shape[0], "nleep")
    n = y.shape[0]
    num_classes = int(y.max()) + 1
    n_comp = component_ratio * num_classes
    check_min(n, n_comp, "nleep", f"fits a GMM with {component_ratio} x {num_classes} = "
              f"{n_comp} components and needs at least that many samples; got N={n}")
    rng = _random_state(random_state)

    prob = gmm_posteriors(pca_scores(x, 0.8), n_comp, rng)  # P(z|x)

    onehot = np.zeros((n, num_classes))
    onehot[np.arange(n), y] = 1.0
    pyz = (onehot.T @ prob) / n
    py_z = pyz / pyz.sum(axis=0)
    py_x = prob @ py_z.T
    p_true = py_x[np.arange(n), y]
    return float(np.mean(np.log(p_true)) if convention == "paper" else np.mean(p_true))


def pca_scores(x: np.ndarray, fraction: float) -> np.ndarray:
    """Scores of sklearn's exact PCA keeping the fewest components explaining > ``fraction``.

    ``PCA(n_components=fraction)`` (spec "NLEEP" step 1): the smallest k whose cumulative
    explained-variance ratio is strictly above ``fraction``. Computed from the eigenvectors of
    the smaller of X_c^T X_c and X_c X_c^T (X_c centred) rather than an SVD of X_c; component
    signs may differ from sklearn's.

    Args:
        x: Shape (N, D), float64.
        fraction: In (0, 1).

    Returns:
        Shape (N, k): the centred data on the first k principal axes.
    """
    centred = x - x.mean(axis=0)
    n, d = centred.shape
    if n > d:
        var, vec = np.linalg.eigh(centred.T @ centred)
    else:
        var, vec = np.linalg.eigh(centred @ centred.T)
    var, vec = np.clip(var[::-1], 0.0, None), vec[:, ::-1]
    k = int(np.searchsorted(np.cumsum(var / var.sum()), fraction, side="right")) + 1
    k = min(k, var.size)
    if n > d:
        return centred @ vec[:, :k]
    return vec[:, :k] * np.sqrt(var[:k])


def _random_state(random_state) -> np.random.RandomState:
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, numbers.Integral):
        return np.random.RandomState(int(random_state))
    raise ValueError(f"nleep: random_state must be None, an int or a np.random.RandomState; "
                     f"got {type(random_state).__name__}")
