"""NLEEP: LEEP with a Gaussian mixture on PCA-reduced features as the "source head".

Li et al., "Ranking Neural Checkpoints", CVPR 2021. Spec section "NLEEP", pitfalls 3-4;
thesis (seed 004) Table 6.2/6.3 baseline.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from ._validation import check_features, check_labels, check_min

CONVENTIONS = ("thesis", "paper")


def nleep(features, labels, *, source_logits=None, random_state=None,
          component_ratio: int = 5, convention: str = "thesis") -> float:
    """Mean probability of the true label under P(y|x) = sum_z P(z|x) P(y|z), z a GMM component.

    Stochastic through the GMM's k-means initialisation. The reference leaves the GMM's
    random_state at None, i.e. NumPy's global RNG; ``random_state=s`` gives exactly the
    reference's result after ``np.random.seed(s)``, without reading or changing the global RNG.

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

    x_pca = PCA(n_components=0.8, random_state=42).fit_transform(x)
    gmm = GaussianMixture(n_components=n_comp, random_state=rng).fit(x_pca)
    prob = gmm.predict_proba(x_pca)  # P(z|x)

    pyz = np.zeros((num_classes, n_comp))
    for c in range(num_classes):
        pyz[c] = prob[y == c].sum(axis=0) / n
    py_z = pyz / pyz.sum(axis=0)
    py_x = prob @ py_z.T
    p_true = py_x[np.arange(n), y]
    return float(np.mean(np.log(p_true)) if convention == "paper" else np.mean(p_true))


def _random_state(random_state) -> np.random.RandomState:
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, numbers.Integral):
        return np.random.RandomState(int(random_state))
    raise ValueError(f"nleep: random_state must be None, an int or a np.random.RandomState; "
                     f"got {type(random_state).__name__}")
