"""DCE losses (seed 000 sec. 3.1, eq. 1-8) against slow transcriptions and hand-made cases."""

import math

import pytest
import torch

from medxfer.losses import (DCELoss, adaptive_loss, adaptive_target, kmeans_1d, le_curve,
                            local_conflict_fraction, local_conflict_loss, region_conflict_loss)


def test_le_curve_eq1():
    i = torch.tensor([[-1.0, 0.0, 0.5]])
    a = torch.tensor([[2.0, 3.0, 0.0]])
    y = le_curve(i, a, x_shift=0.1, y_shift=-0.2)
    expected = [-0.2 + math.tanh(2 * (-0.9)), -0.2 + math.tanh(3 * 0.1), -0.2]
    assert y.flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_kmeans_recovers_five_levels_deterministically():
    levels = torch.tensor([-0.9, -0.5, 0.0, 0.4, 0.8])
    g = torch.Generator().manual_seed(0)
    x = levels[torch.randint(0, 5, (2, 400), generator=g)] + 0.01 * torch.randn(2, 400, generator=g)
    c = kmeans_1d(x, 5)
    assert torch.allclose(c, levels.expand(2, 5), atol=0.01)
    assert torch.equal(c, kmeans_1d(x, 5))


def _piecewise_image():
    """8x8 image with five intensity bands (unequal sizes) -> known sorted centres."""
    vals = [-0.8] * 16 + [-0.4] * 12 + [0.1] * 12 + [0.3] * 12 + [0.9] * 12
    return torch.tensor(vals).view(1, 1, 8, 8)


def test_adaptive_target_peaks_at_third_centre():
    x = _piecewise_image()
    # Probe the target as a function of intensity: append a ramp to the band image.
    ramp = torch.linspace(-1, 1, 201)
    probe = torch.cat([x.flatten(), ramp]).view(1, 1, 1, -1)
    t = adaptive_target(probe, strength=2.5).flatten()[64:]
    c = kmeans_1d(torch.cat([x.flatten(), ramp])[None], 5)[0]
    assert float(ramp[t.argmax()]) == pytest.approx(float(c[2]), abs=0.011)
    assert float(t.max()) == pytest.approx(2.5, rel=1e-3)
    # On the band image: the 0.1 band (3rd centre) gets exactly TS; theta = min gap = 0.2.
    # As a distance (default) it is the Gaussian's width: exp(-0.2^2 / (2 * 0.2^2)) at the 0.3
    # band; read as a variance: exp(-0.2^2 / (2 * 0.2)).
    tb = adaptive_target(x, strength=2.0).flatten()
    assert float(tb[30]) == pytest.approx(2.0)
    assert float(tb[45]) == pytest.approx(2.0 * math.exp(-0.5), rel=1e-5)
    tv = adaptive_target(x, strength=2.0, theta_mode="variance").flatten()
    assert float(tv[45]) == pytest.approx(2.0 * math.exp(-0.04 / 0.4), rel=1e-5)
    with pytest.raises(ValueError, match="theta_mode"):
        adaptive_target(x, theta_mode="sigma")


def test_one_set_of_defaults_for_loss_and_method():
    from medxfer.losses.dce import DEFAULT_KERNEL_SIZE, DEFAULT_STRENGTH, DEFAULT_THETA_MODE

    loss = DCELoss()
    assert (loss.strength, loss.kernel_size, loss.theta_mode) == (
        DEFAULT_STRENGTH, DEFAULT_KERNEL_SIZE, DEFAULT_THETA_MODE) == (3.0, 4, "distance")


def test_adaptive_loss_matches_eq2():
    x = _piecewise_image().repeat(2, 1, 1, 1)
    a = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for mode, var in (("distance", 0.2 ** 2), ("variance", 0.2)):
        target = [2.0 * math.exp(-(float(v) - 0.1) ** 2 / (2 * var)) for v in x.flatten()]
        num = sum((float(av) - tv) ** 2 for av, tv in zip(a.flatten(), target))
        assert float(adaptive_loss(a, x, strength=2.0, theta_mode=mode)) == pytest.approx(
            num / (2 * 2 * 1 * 8 * 8), rel=1e-5)


def _slow_lcl(x, y):
    b, c, h, w = x.shape
    count = 0
    for bi in range(b):
        for ci in range(c):
            for r in range(h):
                for s in range(w):
                    for dr, ds in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                        rr, ss = r + dr, s + ds
                        if 0 <= rr < h and 0 <= ss < w:
                            y_up = float(y[bi, ci, r, s]) > float(y[bi, ci, rr, ss])
                            x_up = float(x[bi, ci, r, s]) > float(x[bi, ci, rr, ss])
                            count += y_up != x_up
    return count / (4 * b * c * h * w)


def test_local_conflict_exact_on_hand_made_image():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    y = torch.tensor([[0.0, 1.0], [3.0, 2.0]]).view(1, 1, 2, 2)
    # Only the bottom pair (2,3) -> (3,2) is flipped: 2 ordered pairs of 16 slots.
    assert float(local_conflict_fraction(x, y)) == pytest.approx(2 / 16)
    assert float(local_conflict_fraction(x, x)) == 0.0
    assert float(local_conflict_fraction(x, -x)) == pytest.approx(8 / 16)  # every pair flips


def test_local_conflict_exact_and_surrogate_match_slow():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 1, 5, 6, generator=g), torch.rand(2, 1, 5, 6, generator=g)
    exact = _slow_lcl(x, y)
    assert float(local_conflict_fraction(x, y)) == pytest.approx(exact)
    # Surrogate tends to the exact count as the sigmoid sharpens; it is differentiable.
    assert float(local_conflict_loss(x, y, sharpness=1e-5)) == pytest.approx(exact, abs=1e-3)
    yg = y.clone().requires_grad_(True)
    local_conflict_loss(x, yg, sharpness=0.1).backward()
    assert torch.isfinite(yg.grad).all() and yg.grad.abs().sum() > 0


def _slow_rcl(x, y, k):
    """Eq. 6-8: rows = flattened k x k squares; G = F F^T; N = M = k^2; mean over images."""
    b, c, h, w = x.shape
    total = 0.0
    for bi in range(b):
        for ci in range(c):
            def flat(t, bi=bi, ci=ci):
                return [[float(t[bi, ci, r * k + i, s * k + j]) for i in range(k) for j in range(k)]
                        for r in range(h // k) for s in range(w // k)]
            fx, fy = flat(x), flat(y)
            t = len(fx)
            for p in range(t):
                for q in range(t):
                    gx = sum(u * v for u, v in zip(fx[p], fx[q]))
                    gy = sum(u * v for u, v in zip(fy[p], fy[q]))
                    total += (gx - gy) ** 2
    n = k * k
    return total / (4 * n * n * n * n) / (b * c)


def test_region_conflict_matches_slow():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 2, 4, 6, generator=g, dtype=torch.float64)
    y = torch.rand(2, 2, 4, 6, generator=g, dtype=torch.float64)
    assert float(region_conflict_loss(x, y, 2)) == pytest.approx(_slow_rcl(x, y, 2), rel=1e-9)
    assert float(region_conflict_loss(x, x, 2)) == 0.0


def test_total_dce_loss_weights_gradients_and_metric():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 8, 8, generator=g) * 2 - 1
    a = torch.rand(2, 1, 8, 8, generator=g).requires_grad_(True)
    loss_fn = DCELoss(w_adapt=1.0, w_lcl=0.5, w_rcl=2.0, strength=1.5, kernel_size=4)
    p = loss_fn.parts(x, a)
    assert torch.allclose(p["total"], p["adapt"] + 0.5 * p["lcl"] + 2.0 * p["rcl"])
    assert not p["lcl_exact"].requires_grad
    assert float(p["lcl_exact"]) == pytest.approx(_slow_lcl(x, p["enhanced"].detach()))
    loss_fn(x, a).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    # A constant alpha keeps the pixel order: no local conflict at all.
    assert float(loss_fn.parts(x, torch.full_like(x, 2.0))["lcl_exact"]) == 0.0
