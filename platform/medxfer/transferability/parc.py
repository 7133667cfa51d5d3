"""PARC: pairwise annotation representation comparison.

Bolya et al., "Scalable Diverse Model Selection for Accessible Transfer Learning", NeurIPS
2021. Spec section "PARC", pitfall 7; thesis (seed 004) Table 6.2/6.3 baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ._validation import check_features, check_labels, check_min


def parc(features, labels, *, source_logits=None, random_state=None,
         n_dims: int = 32, exact_label_ties: bool = False) -> float:
    """100 x Spearman correlation of the feature and label dissimilarity matrices.

    The reference's ``scipy.stats.spearmanr`` (stable-sorts both vectors of N(N-1)/2 pair
    dissimilarities) is computed faster to the same value: the feature ranks from one
    unstable sort (ties still averaged), the label ranks by counting their few distinct
    values, then the Pearson correlation of the ranks.

    Args:
        features: Shape (N, D), used in their own dtype (float32 as extracted).
        labels: Shape (N,), classes 0..C-1.
        source_logits: Unused.
        random_state: Seed of the randomized PCA; None keeps the reference's 1919.
        n_dims: PCA size before min(n_dims, N) (32 in the reference, ratio=2). With N <= 32
            the last component has zero variance and z-scoring amplifies its rounding noise,
            as in the reference.
        exact_label_ties: The reference's label dissimilarity comes from ``np.corrcoef`` of
            the one-hot rows, whose rounding turns some same-class zeros into 2.2e-16 and so
            breaks the ties Spearman would average (the score then moves by tenths of a point
            and depends on how classes are numbered). False (default) keeps that, to match
            the thesis; True uses the exact values 0 and C/(C-1), label-renaming invariant.

    Returns:
        PARC score in [-100, 100]; higher is better.
    """
    x = check_features(features, "parc")
    y = check_labels(labels, x.shape[0], "parc")
    n, d = x.shape
    k = min(n_dims, n)
    check_min(d, k, "parc", f"reduces features to min({n_dims}, N) = {k} dimensions with "
              f"PCA, which needs D >= {k}; got D={d}")
    check_min(n, 3, "parc", f"needs at least 3 samples to correlate pairs; got N={n}")
    seed = 1919 if random_state is None else random_state
    reduced = PCA(n_components=k, svd_solver="randomized", random_state=seed,
                  iterated_power=1).fit_transform(x)
    reduced = StandardScaler().fit_transform(reduced)
    onehot = np.eye(np.unique(y).size)[y]
    feat_dis = 1 - np.corrcoef(reduced)
    if exact_label_ties:
        c = onehot.shape[1]
        label_dis = np.where(y[:, None] == y[None, :], 0.0, c / (c - 1))
    else:
        label_dis = 1 - np.corrcoef(onehot)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)  # row-major, as np.triu_indices(n, 1)
    feat_ranks = average_ranks(feat_dis[upper])
    label_ranks = average_ranks(label_dis[upper], few_values=True)
    return float(np.corrcoef(feat_ranks, label_ranks)[0, 1] * 100)


def average_ranks(values: np.ndarray, *, few_values: bool = False) -> np.ndarray:
    """Ranks 1..M with ties given their average rank, as ``scipy.stats.rankdata(values)``.

    Args:
        values: Shape (M,), finite.
        few_values: The values take few distinct values (label dissimilarities): rank the
            distinct values and count them instead of sorting all M.

    Returns:
        Shape (M,), float64 ranks (exact: integers and halves).
    """
    if few_values:
        codes, uniques = pd.factorize(values + 0.0)  # + 0.0: -0.0 and 0.0 are one value
        order = np.argsort(uniques)
        counts = np.bincount(codes, minlength=uniques.size)[order]
        first = np.cumsum(counts) - counts + 1  # rank of the first of each tied group
        rank_of = np.empty(uniques.size)
        rank_of[order] = first + (counts - 1) / 2
        return rank_of[codes]
    order = np.argsort(values)
    ranked = values[order]
    new = np.empty(ranked.size, dtype=bool)
    new[0] = True
    np.not_equal(ranked[1:], ranked[:-1], out=new[1:])
    ranks = np.empty(values.size)
    if new.all():
        ranks[order] = np.arange(1, values.size + 1, dtype=np.float64)
        return ranks
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, values.size))
    ranks[order] = np.repeat(starts + 1 + (counts - 1) / 2, counts)
    return ranks
