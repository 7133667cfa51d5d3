"""Layer CCA (thesis eq. 3.1, SVCCA style) against known answers and a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from medxfer.evaluation.cca import activations_to_matrix, cca, layer_cca


def _reference_cca(x, y):
    """The thesis' route: singular values of Sigma_X^{-1/2} Sigma_XY Sigma_Y^{-1/2}."""
    x, y = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = x.T @ x, y.T @ y, x.T @ y
    m = np.linalg.inv(sqrtm(sxx)).real @ sxy @ np.linalg.inv(sqrtm(syy)).real
    return np.linalg.svd(m, compute_uv=False)


def test_invertible_linear_map_gives_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 12))
    a = rng.standard_normal((12, 12)) + 3 * np.eye(12)  # invertible
    assert np.linalg.matrix_rank(a) == 12
    res = cca(x, x @ a, keep_variance=None)
    assert res.mean == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(res.coefs, 1.0, atol=1e-9) and res.dims == (12, 12)


def test_invertible_map_of_low_rank_activations_gives_one_after_svd_step():
    # activations of rank 4 in 16 channels (+ tiny noise): the 99% step keeps the same subspace
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 4)) @ rng.standard_normal((4, 16))
    x += 1e-6 * rng.standard_normal(x.shape)
    a = rng.standard_normal((16, 16)) + 4 * np.eye(16)
    res = cca(x, x @ a)
    assert res.dims == (4, 4) and res.mean == pytest.approx(1.0, abs=1e-6)


def test_independent_noise_is_below_0_2():
    # n >= 10 p; the finite-sample bias of CCA is E[sum rho^2] = p q / n, so at n = 10 p the mean
    # is ~0.26 and at n = 50 p ~0.12 (checked here).
    rng = np.random.default_rng(2)
    p = 16
    x, y = rng.standard_normal((50 * p, p)), rng.standard_normal((50 * p, p))
    assert cca(x, y).mean < 0.2


def test_matches_the_covariance_formula():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 5))
    y = x[:, :3] @ rng.standard_normal((3, 4)) + 0.8 * rng.standard_normal((300, 4))
    ours = cca(x, y, keep_variance=None).coefs
    assert np.allclose(ours, _reference_cca(x, y)[:4], atol=1e-8)


def test_symmetric_and_row_order_invariant():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 6))
    y = x @ rng.standard_normal((6, 5)) + rng.standard_normal((200, 5))
    perm = rng.permutation(200)
    a, b, c = cca(x, y).mean, cca(y, x).mean, cca(x[perm], y[perm]).mean
    assert a == pytest.approx(b) and a == pytest.approx(c)
    assert 0.2 < a < 1.0


def test_activations_reshaped_channels_last():
    acts = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    m = activations_to_matrix(acts)
    assert m.shape == (8, 3)
    assert m[0].tolist() == [0, 4, 8]  # image 0, position (0, 0), channels 0..2


def test_layer_cca_subsamples_and_repeats():
    rng = np.random.default_rng(5)
    acts = rng.standard_normal((20, 80, 4, 4))
    mean, std = layer_cca(acts, acts, max_rows=200, max_channels=16, repeats=3)
    # the same rows of the same layer, but different channel samples: correlated, not 1
    assert 0.0 < mean <= 1.0 and std >= 0.0
    same, _ = layer_cca(acts[:, :10], acts[:, :10])
    assert same == pytest.approx(1.0)


@pytest.mark.parametrize("bad, match", [
    ((np.ones((5, 2)), np.ones((4, 2))), "same n"),
    ((np.full((5, 2), np.nan), np.ones((5, 2))), "NaN"),
    ((np.ones((5, 2)), np.ones((5, 2))), "constant"),
])
def test_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        cca(*bad)
