import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import parc_slow, spec_reference

parc = get_metric("parc")


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("n", [80, 33])
def test_matches_slow_transcription(n, exact):
    x, y = blobs(n=n, d=48, c=3, sep=0.5)
    assert parc(x, y, exact_label_ties=exact) == pytest.approx(
        parc_slow(x, y, exact_label_ties=exact), abs=1e-3)


def test_fewer_than_32_samples_reduce_to_n_dimensions():
    # min(32, N) = N components: the last one has zero variance after centring, and the
    # z-scoring blows its rounding noise up to unit variance, as in the reference. So only
    # determinism and range are checked here, not a transcription.
    x, y = blobs(n=20, d=48, c=2)
    value = parc(x, y)
    assert value == parc(x, y) and -100 <= value <= 100


def test_reference_rounding_breaks_label_ties():
    # np.corrcoef of one-hot rows yields 0 and 2.2e-16 for same-class pairs: the thesis'
    # PARC depends on it (and on class numbering); the exact-ties option does not.
    x, y = blobs(n=80, d=48, c=3, sep=0.5)
    renamed = np.array([1, 2, 0])[y]
    assert abs(parc(x, y) - parc(x, y, exact_label_ties=True)) > 1e-3
    assert parc(x, renamed, exact_label_ties=True) == pytest.approx(
        parc(x, y, exact_label_ties=True), abs=1e-9)


def test_sample_order_and_range():
    x, y = blobs(n=80, d=48, c=3, sep=0.5)
    base = parc(x, y, exact_label_ties=True)
    assert -100 <= base <= 100
    perm = np.random.default_rng(0).permutation(len(y))
    assert parc(x[perm], y[perm], exact_label_ties=True) == pytest.approx(base, abs=1e-3)


def test_scaled_by_100_and_orders_separation():
    sep = parc(*blobs(n=80, d=48, c=3, sep=4.0))
    mix = parc(*blobs(n=80, d=48, c=3, sep=0.05))
    assert sep > 15 and sep > abs(mix) + 10  # a fraction would never exceed 1


def test_pca_needs_enough_dimensions():
    x, y = blobs(n=80, d=16, c=2)
    with pytest.raises(ValueError, match="needs D >= 32"):
        parc(x, y)


@pytest.mark.parametrize("n,c", [(200, 4), (90, 7)])
def test_equals_spec_reference_computation(n, c):
    x, y = blobs(n=n, d=48, c=c, sep=0.3)
    assert abs(parc(x, y) - spec_reference.parc_reference(x, y)) <= 1e-6


def test_average_ranks_equal_scipy_rankdata():
    from scipy.stats import rankdata

    from medxfer.transferability.parc import average_ranks

    rng = np.random.default_rng(0)
    cases = [rng.random(500), rng.integers(0, 6, 500).astype(float),
             np.round(rng.normal(size=500), 1), np.array([0.0, -0.0, 2.0, 2.0, 1.0])]
    for v in cases:
        np.testing.assert_array_equal(average_ranks(v), rankdata(v))
        np.testing.assert_array_equal(average_ranks(v, few_values=True), rankdata(v))
