import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import nleep_reference_global_rng, spec_reference

nleep = get_metric("nleep")


@pytest.fixture
def global_rng_guard():
    """Restore NumPy's global RNG after a test that seeds it on purpose."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def _same_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_random_state_equals_seeding_the_global_rng(global_rng_guard):
    x, y = blobs(n=90, d=20, c=3, sep=0.7)
    np.random.seed(7)
    p_ref = nleep_reference_global_rng(x, y)
    assert nleep(x, y, random_state=7) == pytest.approx(p_ref.mean(), rel=1e-12)
    assert nleep(x, y, random_state=7, convention="paper") == \
        pytest.approx(np.log(p_ref).mean(), rel=1e-12)


def test_global_rng_untouched():
    x, y = blobs(n=90, d=20, c=3, sep=0.7)
    before = np.random.get_state()
    nleep(x, y, random_state=3)
    nleep(x, y)  # None: a fresh seed, still not the global RNG
    assert _same_state(before, np.random.get_state())


def test_seed_matters_and_is_reproducible():
    x, y = blobs(n=90, d=20, c=3, sep=0.7)
    values = {nleep(x, y, random_state=s) for s in range(4)}
    assert len(values) > 1  # stochastic through the GMM initialisation (spec pitfall 4)
    assert nleep(x, y, random_state=1) == nleep(x, y, random_state=1)


def test_float32_and_float64_agree():
    x, y = blobs(n=90, d=20, c=3, sep=0.7)
    assert nleep(x, y, random_state=0) == pytest.approx(
        nleep(x.astype(np.float64), y, random_state=0), abs=1e-6)


def test_label_renaming_invariant_and_probability_range():
    x, y = blobs(n=90, d=20, c=3, sep=0.7)
    base = nleep(x, y, random_state=0)
    assert 0 <= base <= 1
    assert nleep(x, np.array([2, 0, 1])[y], random_state=0) == pytest.approx(base, rel=1e-12)


def test_needs_five_samples_per_component():
    x, y = blobs(n=12, d=20, c=3)
    with pytest.raises(ValueError, match="5 x 3 = 15 components"):
        nleep(x, y)


@pytest.mark.parametrize("n,d,seed", [(200, 32, 0), (60, 100, 1)])
def test_equals_sklearn_pca_and_gaussian_mixture(n, d, seed):
    # Own exact PCA and EM against sklearn's PCA(0.8) + GaussianMixture at equal random_state,
    # N > D and N < D (PCA from the N x N Gram matrix).
    x, y = blobs(n=n, d=d, c=4, sep=0.5, seed=seed)
    assert abs(nleep(x, y, random_state=seed)
               - spec_reference.nleep_reference(x, y, seed)) <= 1e-6


def test_gmm_posteriors_equal_sklearn_predict_proba():
    from sklearn.mixture import GaussianMixture

    from medxfer.transferability._gmm import gmm_posteriors

    x, _ = blobs(n=150, d=6, c=3, sep=0.3, dtype=np.float64)
    ours = gmm_posteriors(x, 5, np.random.RandomState(3))
    gmm = GaussianMixture(n_components=5, random_state=np.random.RandomState(3)).fit(x)
    assert gmm.n_iter_ > 2  # soft posteriors: several EM iterations are compared
    np.testing.assert_allclose(ours, gmm.predict_proba(x), atol=1e-8)


def test_pca_scores_keep_the_sklearn_component_count():
    from sklearn.decomposition import PCA

    from medxfer.transferability.nleep import pca_scores

    for n, d in ((200, 32), (40, 90)):
        x, _ = blobs(n=n, d=d, c=3, dtype=np.float64)
        ref = PCA(n_components=0.8, random_state=42).fit_transform(x)
        ours = pca_scores(x, 0.8)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-9)  # signs may differ


def test_low_rank_and_dense_covariances_give_exact_log_densities():
    # One-hot components in 48-d: 20 samples (<= D/2) take the low-rank form (reg I + rank 20),
    # 40 samples the dense one. Both against scipy's multivariate normal on the covariance
    # written out as sklearn defines it.
    from scipy.stats import multivariate_normal

    from medxfer.transferability._gmm import _e_step, _m_step

    x, labels = blobs(n=140, d=48, c=7, sep=0.8, dtype=np.float64)
    labels = np.minimum(labels, 5)  # classes 5 and 6 merge: 40 samples, m > D/2
    resp = np.eye(6)[labels]
    nk, means, factors = _m_step(x, resp, 1e-6)
    assert [f.basis is None for f in factors] == [False] * 5 + [True]
    log_norm, log_resp = _e_step(x, nk / nk.sum(), means, factors)
    expected = np.stack([
        multivariate_normal(means[k], (resp[:, k, None] * (x - means[k])).T @ (x - means[k])
                            / nk[k] + 1e-6 * np.eye(48)).logpdf(x) for k in range(6)], axis=1)
    np.testing.assert_allclose(log_resp + log_norm[:, None],
                               expected + np.log(nk / nk.sum()), rtol=1e-8)
