"""NCTI: neural-collapse transferability index (its three raw terms).

Wang et al., "How Far Pre-trained Models Are from Neural Collapse on the Target Dataset
Informs their Transferability", ICCV 2023. Spec section "NCTI", pitfalls 1, 2 and 8; thesis
(seed 004) Table 6.2/6.3 baseline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from ._pca_lda import lda_svd, randomized_pca
from ._validation import check_features, check_labels, check_min

CONVENTIONS = ("thesis", "paper")


class NCTITerms(NamedTuple):
    """The three raw NCTI terms of one source on one target."""

    seli: float  #: nuclear norm of the centred LDA embedding (>= 0)
    ncc: float  #: mean true-class LDA probability, no log ([0, 1])
    vc: float  #: log of the summed per-class nuclear norms of the probability matrix


def ncti(features, labels, *, source_logits=None, random_state=None) -> NCTITerms:
    """NCTI's raw terms (seli, ncc, vc); combine them across sources with :func:`ncti_combine`.

    Args:
        features: Shape (N, D), used in their own dtype; needs min(N, D) >= 64.
        labels: Shape (N,), classes 0..C-1.
        source_logits: Unused.
        random_state: PCA seed; None keeps the reference's 42. The PCA solver is sklearn's
            'auto' (randomized when max(N, D) > 500 and 64 < 0.8 min(N, D)), as the reference.
            The randomized PCA and the SVD-solver LDA run through :mod:`._pca_lda` (the same
            computation as the estimators, bit for bit, without their overhead).

    Returns:
        ``NCTITerms(seli, ncc, vc)``.
    """
    x = check_features(features, "ncti")
    y = check_labels(labels, x.shape[0], "ncti")
    n, d = x.shape
    check_min(min(n, d), 64, "ncti", f"reduces features to 64 dimensions with PCA, which "
              f"needs N >= 64 and D >= 64; got N={n}, D={d}")
    seed = 42 if random_state is None else random_state
    fast = randomized_pca(x, 64, seed)
    if fast is None:
        pca = PCA(n_components=64, random_state=seed)
        reduced, variance = pca.fit_transform(x), pca.explained_variance_
    else:
        reduced, variance = fast
    temp = max(np.exp(-np.sum(variance[:32])), 1e-10)
    if temp == 1e-10:
        embedded, proba = lda_svd(reduced, y)
    else:
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=temp)
        embedded, proba = lda.fit_transform(reduced, y), lda.predict_proba(reduced)
    embedded = embedded - embedded.mean(axis=0, keepdims=True)
    seli = np.linalg.norm(embedded, ord="nuc")
    ncc = proba[np.arange(n), y].sum() / n
    nuclear = sum(np.linalg.norm(proba[y == c], ord="nuc") for c in range(int(y.max()) + 1))
    return NCTITerms(float(seli), float(ncc), float(np.log(nuclear)))


def ncti_combine(seli, ncc, vc, *, convention: str = "thesis") -> np.ndarray:
    """NCTI per source for one target: min-max normalised terms over the sources, summed.

    Spec "NCTI" (combining across sources) and pitfall 1. NaN entries (e.g. source ==
    target) are ignored by the min and max and stay NaN.

    Args:
        seli, ncc, vc: Shape (S,), one value per candidate source.
        convention: ``"thesis"`` (default): seli_n + ncc_n + vc_n, in [0, 3].
            ``"paper"``: seli_n + ncc_n - vc_n, as the NCTI paper and its code.

    Returns:
        Shape (S,): the combined score per source; higher is better.
    """
    from .combine import combine  # the one implementation of min-max across sources

    if convention not in CONVENTIONS:
        raise ValueError(f"ncti_combine: convention must be one of {CONVENTIONS}; "
                         f"got {convention!r}")
    terms = {}
    for t, name in ((seli, "seli"), (ncc, "ncc"), (vc, "vc")):
        a = np.asarray(t, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"ncti_combine: {name} must be 1-d (one value per source); "
                             f"got shape {a.shape}")
        terms[name] = a
    if len({a.shape for a in terms.values()}) != 1:
        raise ValueError(f"ncti_combine: seli, ncc and vc must have the same shape; "
                         f"got {[a.shape for a in terms.values()]}")
    # One target column; its name never equals a (positional) source, so nothing is masked.
    frames = {n: pd.DataFrame({"target": a}) for n, a in terms.items()}
    return combine("ncti", frames, convention=convention)["target"].to_numpy()
