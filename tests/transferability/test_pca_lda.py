"""NCTI's lean PCA and LDA return exactly what scikit-learn's estimators return."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from medxfer.transferability._pca_lda import lda_svd, picks_randomized, randomized_pca


def _features(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (np.abs(rng.normal(size=(n, d))) + rng.normal(size=(1, d))).astype(dtype)


# tall (no transpose), wide (sklearn transposes), 7 power iterations (k < 0.1 min(n, d))
@pytest.mark.parametrize("n, d, k", [(520, 300, 64), (200, 600, 64), (520, 300, 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randomized_pca_equals_sklearn_bit_for_bit(n, d, k, dtype):
    x = _features(n, d, dtype)
    before = x.copy()
    reduced, variance = randomized_pca(x, k, 42)
    pca = PCA(n_components=k, random_state=42)
    expected = pca.fit_transform(x)
    assert pca._fit_svd_solver == "randomized"
    assert reduced.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(reduced, expected)
    np.testing.assert_array_equal(variance, pca.explained_variance_)
    np.testing.assert_array_equal(x, before)  # the input is not centred in place


# covariance_eigh, full, randomized (tall and wide), full (64 >= 0.8 min(n, d))
@pytest.mark.parametrize("n, d", [(2000, 100), (300, 200), (520, 300), (200, 600), (520, 70)])
def test_picks_randomized_as_sklearn_auto(n, d):
    pca = PCA(n_components=64).fit(_features(n, d, np.float32))
    assert picks_randomized(n, d, 64) == (pca._fit_svd_solver == "randomized")


def test_randomized_pca_declines_other_solvers():
    assert randomized_pca(_features(2000, 100, np.float32), 64, 42) is None  # covariance_eigh
    assert randomized_pca(_features(300, 200, np.float32), 64, 42) is None  # full


@pytest.mark.parametrize("c", [2, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lda_svd_equals_sklearn_bit_for_bit(c, dtype):
    rng = np.random.default_rng(1)
    y = rng.permutation(np.arange(400) % c)
    x = (rng.normal(size=(400, 64)) + 0.5 * rng.normal(size=(c, 64))[y]).astype(dtype)
    lda = LinearDiscriminantAnalysis(solver="svd")
    embedded, proba = lda_svd(x, y)
    np.testing.assert_array_equal(embedded, lda.fit_transform(x, y))
    np.testing.assert_array_equal(proba, lda.predict_proba(x))
    assert embedded.shape == (400, c - 1) and proba.shape == (400, c)
