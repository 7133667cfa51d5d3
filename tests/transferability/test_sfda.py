import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import sfda_slow, spec_reference

sfda = get_metric("sfda")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sep,scale", [(0.4, 0.2), (0.4, 1.0), (1.0, 0.05)])
def test_closed_form_equals_generalised_eigenproblem(sep, scale, dtype):
    # scale 0.2 / 0.05: small variances, so the adaptive shrinkage is well above 1e-10.
    x, y = blobs(n=200, d=24, c=4, sep=sep, scale=scale, dtype=dtype)
    assert sfda(x, y) == pytest.approx(sfda_slow(x, y), rel=1e-8, abs=1e-10)


def test_n_below_d_is_separable_and_saturates():
    x, y = blobs(n=30, d=60, c=3, sep=0.1)
    assert sfda(x, y) == pytest.approx(1.0, abs=1e-9)
    assert sfda_slow(x, y) == pytest.approx(1.0, abs=1e-9)


def test_does_not_overwrite_input_unlike_the_reference():
    x, y = blobs(n=200, d=24, c=4, sep=0.4)
    copy = x.copy()
    sfda(x, y)
    np.testing.assert_array_equal(x, copy)


def test_invariances():
    x, y = blobs(n=200, d=24, c=4, sep=0.4, scale=0.3)
    base = sfda(x, y)
    perm = np.random.default_rng(0).permutation(len(y))
    assert sfda(x[perm], y[perm]) == pytest.approx(base, rel=1e-9)
    assert sfda(x, np.array([3, 1, 0, 2])[y]) == pytest.approx(base, rel=1e-9)
    assert 0 <= base <= 1


def test_equals_spec_reference_computation():
    x, y = blobs(n=200, d=32, c=4, sep=0.4, scale=0.2)
    assert abs(sfda(x, y) - spec_reference.sfda_reference(x, y)) <= 1e-6
