"""Domain gap between datasets: intensity and GLCM texture features, MMD, MDS map.

Seed ``000_3dd3de5c534b555f.txt`` App. A.2 ("Domain gap measurement"): per image the grey-level
mean and standard deviation (colour features) and four Gray-Level Co-occurrence Matrix features
(angular second moment, homogeneity, contrast, correlation) in 4 directions (texture features);
the domain gap of two datasets is the Maximum Mean Discrepancy of their feature distributions,
and multidimensional scaling of the distance matrix gives the 2-D map of seed 000 Fig. 1(c).

Choices the paper leaves open (ours): GLCM at distance 1 and angles 0, 45, 90, 135 degrees on
images quantised to ``levels`` grey levels (32: small images give too sparse a 256-level
matrix), symmetric and normalised (scikit-image ``graycomatrix``/``graycoprops``); RGB images
are averaged to grey. Features are standardised with the pooled mean and std of all datasets
compared, and MMD uses a Gaussian kernel ``exp(-gamma ||a - b||^2)`` with the median heuristic
``gamma = 1 / median ||a - b||^2`` over the pooled features (Gretton et al. 2012,
https://jmlr.org/papers/v13/gretton12a.html). ``mmd2`` is the biased (V-statistic) estimate, so
a dataset has exactly 0 to itself; the p-value is a permutation test of the pooled samples. The
MDS map uses ``sqrt(max(MMD^2, 0))`` as distance.
"""

from __future__ import annotations

import numpy as np

GLCM_PROPS = ("ASM", "homogeneity", "contrast", "correlation")
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
FEATURE_NAMES = ("mean", "std") + tuple(f"{p}_{a}" for p in GLCM_PROPS for a in (0, 45, 90, 135))


def _grey_uint8(images: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` or ``(n, H, W, 3)`` uint8/float in [0, 1] -> ``(n, H, W)`` uint8."""
    x = np.asarray(images)
    if x.ndim == 4:
        x = x.astype(np.float64).mean(-1)
    if x.ndim != 3:
        raise ValueError(f"expected images (n, H, W) or (n, H, W, 3), got {np.shape(images)}")
    if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1.0:
        x = np.clip(x, 0, 255) / 255.0
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or inf")
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def image_features(images: np.ndarray, *, levels: int = 32) -> np.ndarray:
    """The 18 features of seed 000 App. A.2 per image (names in :data:`FEATURE_NAMES`).

    Args:
        images: ``(n, H, W)`` or ``(n, H, W, 3)``, uint8 or float in [0, 1].
        levels: Grey levels of the GLCM (2..256).

    Returns:
        ``(n, 18)``: mean and std of the grey levels in [0, 1], then the four GLCM properties
        at angles 0, 45, 90, 135 degrees.
    """
    from skimage.feature import graycomatrix, graycoprops

    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be in 2..256, got {levels}")
    grey = _grey_uint8(images)
    q = (grey.astype(np.int64) * levels // 256).astype(np.uint8)
    out = np.empty((len(grey), len(FEATURE_NAMES)))
    out[:, 0] = grey.mean((1, 2)) / 255.0
    out[:, 1] = grey.std((1, 2)) / 255.0
    for i, img in enumerate(q):
        glcm = graycomatrix(img, [1], GLCM_ANGLES, levels=levels, symmetric=True, normed=True)
        props = [graycoprops(glcm, p)[0] for p in GLCM_PROPS]  # each (4,)
        out[i, 2:] = np.concatenate(props)
    # a constant image has an undefined GLCM correlation: scikit-image's convention is 1
    return np.nan_to_num(out, nan=1.0)


def standardise(*features: np.ndarray) -> list[np.ndarray]:
    """Z-score every set with the pooled mean and std (constant features left at 0)."""
    pooled = np.concatenate(features)
    mu, sd = pooled.mean(0), pooled.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(f - mu) / sd for f in features]


def median_gamma(x: np.ndarray, *, max_points: int = 1000, seed: int = 0) -> float:
    """``1 / median`` of the pairwise squared distances (on at most ``max_points`` rows)."""
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    d2 = _sq_dists(x, x)[np.triu_indices(len(x), 1)]
    med = float(np.median(d2)) if d2.size else 0.0
    return 1.0 / med if med > 0 else 1.0


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def _mmd2_from_kernel(k: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Biased MMD^2 for each column of ``member`` (``(N, B)`` 0/1: 1 = first sample)."""
    a = member.astype(np.float64)
    b = 1.0 - a
    n, m = a.sum(0), b.sum(0)
    ka, kb = k @ a, k @ b
    return (a * ka).sum(0) / n ** 2 + (b * kb).sum(0) / m ** 2 - 2 * (a * kb).sum(0) / (n * m)


def mmd2(x: np.ndarray, y: np.ndarray, *, gamma: float) -> float:
    """Biased squared MMD of samples ``x (n, d)`` and ``y (m, d)`` with a Gaussian kernel."""
    z = np.concatenate([x, y])
    member = (np.arange(len(z)) < len(x))[:, None]
    return float(_mmd2_from_kernel(np.exp(-gamma * _sq_dists(z, z)), member)[0])


def mmd_test(x: np.ndarray, y: np.ndarray, *, gamma: float, n_permutations: int = 500,
             seed: int = 0) -> tuple[float, float]:
    """Squared MMD and its permutation p-value ``(1 + #{perm >= observed}) / (1 + B)``.

    Args:
        x: ``(n, d)`` features of one dataset (already standardised).
        y: ``(m, d)`` features of the other.
        gamma: Kernel width (e.g. :func:`median_gamma` of the pooled features).
        n_permutations: ``B``, random relabellings of the pooled samples.
        seed: Permutation seed.

    Returns:
        ``(mmd2, p_value)``.
    """
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least 2 samples per dataset, got {len(x)} and {len(y)}")
    z = np.concatenate([x, y])
    k = np.exp(-gamma * _sq_dists(z, z))
    first = np.arange(len(z)) < len(x)
    observed = float(_mmd2_from_kernel(k, first[:, None])[0])
    rng = np.random.default_rng(seed)
    hits = 0
    if n_permutations:
        perms = np.stack([rng.permutation(first) for _ in range(n_permutations)], 1)
        hits = int((_mmd2_from_kernel(k, perms) >= observed - 1e-12).sum())
    return observed, (1 + hits) / (1 + n_permutations)


def mmd_matrix(features: list[np.ndarray], *, n_permutations: int = 500,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise squared MMD and p-values of several datasets' raw features.

    Features are standardised together and one median-heuristic ``gamma`` is used for every pair,
    so the distances are comparable.

    Returns:
        ``(mmd2 (k, k), p_values (k, k))``, symmetric; the diagonal is 0 and 1.
    """
    z = standardise(*features)
    gamma = median_gamma(np.concatenate(z), seed=seed)
    k = len(z)
    m2, pv = np.zeros((k, k)), np.ones((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            m2[i, j], pv[i, j] = mmd_test(z[i], z[j], gamma=gamma,
                                          n_permutations=n_permutations, seed=seed)
            m2[j, i], pv[j, i] = m2[i, j], pv[i, j]
    return m2, pv


def mds_map(mmd2_matrix: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D metric MDS (scikit-learn) of the distances ``sqrt(max(MMD^2, 0))``, ``(k, 2)``."""
    from sklearn.manifold import MDS

    d = np.sqrt(np.maximum(np.asarray(mmd2_matrix, dtype=np.float64), 0.0))
    d = (d + d.T) / 2
    if len(d) == 1:
        return np.zeros((1, 2))
    mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed)
    return mds.fit_transform(d)
