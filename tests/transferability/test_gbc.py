import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import gbc_slow, spec_reference

gbc = get_metric("gbc")


@pytest.mark.parametrize("gaussian", ["diagonal", "spherical"])
def test_matches_slow_transcription(gaussian):
    x, y = blobs(n=120, d=40, c=4, sep=0.3)
    assert gbc(x, y, gaussian=gaussian) == pytest.approx(
        gbc_slow(x, y, spherical=gaussian == "spherical"), rel=1e-6)


def test_identical_classes_give_the_minimum():
    rng = np.random.default_rng(0)
    half = rng.normal(size=(30, 10))
    x = np.vstack([half, half, half])  # three identical class distributions
    y = np.repeat([0, 1, 2], 30)
    assert gbc(x, y) == pytest.approx(-3 * 2, abs=1e-9)  # -C(C-1): every exp(-D_B) = 1


def test_well_separated_classes_approach_zero():
    value = gbc(*blobs(n=120, d=40, c=3, sep=10.0))
    assert -1e-6 < value <= 0


def test_invariances_and_any_labels():
    x, y = blobs(n=120, d=40, c=3, sep=0.3)
    base = gbc(x, y)
    perm = np.random.default_rng(0).permutation(len(y))
    assert gbc(x[perm], y[perm]) == pytest.approx(base, rel=1e-4)  # float32 PCA rounding
    assert gbc(x, np.array([10, 3, 7])[y]) == pytest.approx(base, rel=1e-12)  # gaps allowed


@pytest.mark.parametrize("n,d", [(200, 32), (30, 100)])
def test_equals_spec_reference_computation(n, d):
    x, y = blobs(n=n, d=d, c=4, sep=0.3)
    assert abs(gbc(x, y) - spec_reference.gbc_reference(x, y)) <= 1e-6
