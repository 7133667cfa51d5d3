"""LP, the thesis' "label prediction" (feature quality) score: NCA embedding + 5-NN.

Thesis (seed 004) eq. 6.2; spec section "LP", pitfall 9.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from ._nca import nca_transform
from ._validation import check_features, check_labels, check_min


def lp(features, labels, *, source_logits=None, random_state=None,
       n_components: int = 50, n_neighbors: int = 5) -> float:
    """Mean fraction of each sample's 5 nearest neighbours (itself included) sharing its label.

    NCA (50 components, sklearn defaults: max_iter 50, init 'auto') embeds the features; a
    5-NN classifier fitted on the embedded points predicts the same points, so each point is
    one of its own neighbours (the minimum per sample is 1/5). The NCA fit is sklearn's, with
    its loss and gradient computed faster to the same numbers (:mod:`._nca`).

    Args:
        features: Shape (N, D), used in their own dtype (float32 as the thesis; float64
            moves LP by up to a few hundredths); needs D >= 50.
        labels: Shape (N,); any integer labels.
        source_logits: Unused.
        random_state: NCA seed; None keeps the thesis' 42.
        n_components: NCA output size (50).
        n_neighbors: k of the k-NN (5).

    Returns:
        LP score in [0, 1]; higher is better.
    """
    x = check_features(features, "lp")
    y = check_labels(labels, x.shape[0], "lp", contiguous=False)
    n, d = x.shape
    check_min(d, n_components, "lp", f"embeds features into {n_components} dimensions "
              f"with NCA, which needs D >= {n_components}; got D={d}")
    check_min(n, n_neighbors, "lp", f"uses {n_neighbors} nearest neighbours and needs at "
              f"least that many samples; got N={n}")
    seed = 42 if random_state is None else random_state
    embedded = nca_transform(x, y, n_components=n_components, random_state=seed)
    knn = KNeighborsClassifier(n_neighbors=n_neighbors).fit(embedded, y)
    proba = knn.predict_proba(embedded)
    cols = np.searchsorted(knn.classes_, y)
    return float(np.mean(proba[np.arange(n), cols]))
