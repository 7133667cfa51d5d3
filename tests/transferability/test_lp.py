import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import lp_slow

lp = get_metric("lp")


def test_matches_slow_transcription_counting_self():
    x, y = blobs(n=60, d=52, c=3, sep=0.2)
    value = lp(x, y)
    assert value == pytest.approx(lp_slow(x, y), abs=1e-12)
    assert 0.2 <= value < 1  # self is always one of the 5 neighbours


def test_separated_classes_saturate():
    assert lp(*blobs(n=60, d=52, c=3, sep=5.0)) == 1.0


def test_labels_need_not_be_contiguous():
    x, y = blobs(n=60, d=52, c=3, sep=0.2)
    assert lp(x, np.array([4, 9, 20])[y]) == pytest.approx(lp(x, y), abs=1e-12)


def test_float32_is_the_thesis_default():
    x, y = blobs(n=60, d=52, c=3, sep=0.2)
    assert lp(x, y) == pytest.approx(lp_slow(x, y))  # float32 kept through NCA
    assert isinstance(lp(x.astype(np.float64), y), float)


def test_needs_50_dimensions():
    x, y = blobs(n=60, d=30, c=3)
    with pytest.raises(ValueError, match="needs D >= 50"):
        lp(x, y)
