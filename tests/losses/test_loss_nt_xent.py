"""NT-Xent (seed 000 eq. 9) against a slow loop, an analytic case, symmetry, gradients, bank."""

import math

import pytest
import torch

from medxfer.losses import NTXentLoss, nt_xent_loss


def _slow_nt_xent(z0, z1, tau):
    """Eq. 9 written out: z_{2k-1}, z_{2k} are the two views of image k."""
    z = []
    for a, b in zip(z0, z1):
        z += [a, b]
    n2 = len(z)

    def sim(u, v):
        return float(u @ v) / (float(u.norm()) * float(v.norm()))

    total = 0.0
    for i in range(n2):
        j = i + 1 if i % 2 == 0 else i - 1
        den = sum(math.exp(sim(z[i], z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / tau) / den)
    return total / n2


@pytest.mark.parametrize("n,d,tau", [(1, 3, 0.5), (4, 8, 0.1), (5, 1, 1.0)])
def test_matches_slow_loop(n, d, tau):
    g = torch.Generator().manual_seed(n * 10 + d)
    z0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    assert float(NTXentLoss(tau)(z0, z1)) == pytest.approx(_slow_nt_xent(z0, z1, tau), rel=1e-9)


@pytest.mark.parametrize("n,tau", [(2, 0.5), (4, 0.1)])
def test_identical_views_orthogonal_to_rest(n, tau):
    # sim(z_i, z_j) = 1 for the pair, 0 with the 2n - 2 others.
    z = torch.eye(n, 2 * n, dtype=torch.float64)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2))
    assert float(nt_xent_loss(z, z.clone(), tau)) == pytest.approx(expected, rel=1e-5)


def test_symmetric_in_views_and_sample_order():
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    loss = nt_xent_loss(z0, z1, 0.2)
    assert torch.allclose(loss, nt_xent_loss(z1, z0, 0.2))
    perm = torch.randperm(6, generator=g)
    assert torch.allclose(loss, nt_xent_loss(z0[perm], z1[perm], 0.2))


def test_gradients_finite_and_nonzero():
    z0 = torch.randn(4, 5, requires_grad=True)
    z1 = torch.randn(4, 5, requires_grad=True)
    nt_xent_loss(z0, z1, 0.5).backward()
    for g in (z0.grad, z1.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_memory_bank_negatives_and_fifo():
    torch.manual_seed(0)
    loss_fn = NTXentLoss(0.5, memory_bank_size=5, dim=3)
    z0, z1 = torch.randn(2, 3), torch.randn(2, 3)
    # Empty bank: only the positive -> loss 0; then the bank holds z1.
    assert float(loss_fn(z0, z1)) == pytest.approx(0.0, abs=1e-6)
    keys, _ = loss_fn.memory_bank.get()
    assert torch.allclose(keys, torch.nn.functional.normalize(z1, dim=1))
    z2, z3 = torch.randn(2, 3), torch.randn(2, 3)
    bank = torch.nn.functional.normalize(z1, dim=1)
    # Slow: -log( e^{s(q,k)/t} / (e^{s(q,k)/t} + sum_bank e^{s(q,n)/t}) ), mean over queries.
    cos = torch.nn.functional.cosine_similarity
    exp_loss = 0.0
    for q, k in zip(z2, z3):
        pos = math.exp(float(cos(q, k, dim=0)) / 0.5)
        neg = sum(math.exp(float(cos(q, b, dim=0)) / 0.5) for b in bank)
        exp_loss += -math.log(pos / (pos + neg)) / 2
    assert float(loss_fn(z2, z3)) == pytest.approx(exp_loss, rel=1e-5)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXentLoss(0.0)
    with pytest.raises(ValueError, match="needs dim"):
        NTXentLoss(memory_bank_size=4)
