import numpy as np
import pytest

from medxfer.transferability import get_metric

from ._data import blobs
from ._reference import lp_slow, spec_reference

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


def test_equals_sklearn_nca_and_knn():
    x, y = blobs(n=90, d=52, c=3, sep=0.2)
    assert abs(lp(x, y) - spec_reference.lp_reference(x, y)) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nca_loss_and_gradient_equal_sklearn_bit_for_bit(dtype):
    # Same numbers => the same L-BFGS-B steps as sklearn's NCA fit.
    from sklearn.neighbors import NeighborhoodComponentsAnalysis

    from medxfer.transferability._nca import _LossGrad

    x, y = blobs(n=150, d=60, c=4, sep=0.2, dtype=dtype)
    same = y[:, None] == y[None, :]
    nca = NeighborhoodComponentsAnalysis(n_components=50)
    nca.n_iter_ = 1
    ours = _LossGrad(x, same.astype(dtype))
    for seed in range(3):
        t = (np.random.default_rng(seed).normal(size=(50, 60)) * 0.1).astype(dtype).ravel()
        loss, grad = nca._loss_grad_lbfgs(t, x, same, -1.0)
        loss2, grad2 = ours(t)
        assert loss2 == loss and loss2.dtype == loss.dtype
        np.testing.assert_array_equal(grad2, grad)


def test_sq_distances_equal_sklearn_blockwise_upcast():
    # 2,300 float32 rows: sklearn's upcast path multiplies 3 x 3 blocks and mirrors 3 of them.
    from sklearn.metrics import pairwise_distances

    from medxfer.transferability._nca import _sq_distances

    e = np.random.default_rng(0).normal(size=(2300, 50)).astype(np.float32)
    out = np.empty((2300, 2300), np.float32)
    np.testing.assert_array_equal(_sq_distances(e, out=out), pairwise_distances(e, squared=True))
