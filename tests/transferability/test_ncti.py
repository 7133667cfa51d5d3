import numpy as np
import pytest

from medxfer.transferability import NCTITerms, get_metric, ncti_combine

from ._data import blobs
from ._reference import ncti_slow, spec_reference

ncti = get_metric("ncti")


@pytest.mark.parametrize("scale", [0.1, 1.0])  # shrinkage-eigen LDA / svd LDA branches
def test_matches_slow_transcription(scale):
    x, y = blobs(n=150, d=80, c=4, sep=0.3, scale=scale)
    terms = ncti(x, y)
    assert isinstance(terms, NCTITerms)
    np.testing.assert_allclose(terms, ncti_slow(x, y), rtol=1e-5)
    assert 0 <= terms.ncc <= 1 and terms.seli >= 0


def test_label_renaming_invariant():
    x, y = blobs(n=150, d=80, c=3, sep=0.3)
    np.testing.assert_allclose(ncti(x, np.array([2, 0, 1])[y]), ncti(x, y), rtol=1e-4)


def test_needs_64_dimensions():
    x, y = blobs(n=150, d=40, c=3)
    with pytest.raises(ValueError, match="needs N >= 64 and D >= 64"):
        ncti(x, y)


def test_combine_conventions_by_hand():
    seli, ncc, vc = [0.0, 5.0, 10.0], [1.0, 0.5, 0.0], [2.0, 4.0, np.nan]
    # min-max: seli (0, .5, 1), ncc (1, .5, 0), vc (0, 1, nan)
    np.testing.assert_allclose(ncti_combine(seli, ncc, vc), [1.0, 2.0, np.nan])
    np.testing.assert_allclose(ncti_combine(seli, ncc, vc, convention="paper"),
                               [1.0, 0.0, np.nan])
    with pytest.raises(ValueError, match="convention"):
        ncti_combine(seli, ncc, vc, convention="sum")


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_equals_spec_reference_computation(scale):
    x, y = blobs(n=200, d=80, c=4, sep=0.3, scale=scale)
    np.testing.assert_allclose(ncti(x, y), spec_reference.ncti_reference(x, y), rtol=0,
                               atol=1e-6)


def test_equals_spec_reference_where_pca_is_randomized():
    # 200 x 600: sklearn's 'auto' picks the randomized PCA, which ncti computes itself
    x, y = blobs(n=200, d=600, c=4, sep=0.3)
    assert ncti(x, y) == spec_reference.ncti_reference(x, y)
