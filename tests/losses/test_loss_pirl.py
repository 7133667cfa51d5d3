"""PIRL (Misra & van der Maaten 2020 eq. 3-5) against a slow transcription; its memory bank."""

import math

import pytest
import torch

from medxfer.losses import IndexedMemoryBank, PIRLLoss, nce_loss, pirl_loss


def _cos(a, b):
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def _slow_nce(u, v, negatives, n_data, tau):
    """Eq. 4 with h of eq. 3, negatives shared by the batch."""
    prior = len(negatives) / n_data
    total = 0.0
    for ui, vi in zip(u, v):
        e = math.exp(_cos(ui, vi) / tau)
        loss = -math.log(e / (e + prior))
        for m in negatives:
            en = math.exp(_cos(vi, m) / tau)
            loss -= math.log(1 - en / (en + prior))
        total += loss
    return total / len(u)


def test_nce_matches_eq3_eq4():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g,
                                                                            dtype=torch.float64)
    neg = torch.randn(6, 5, generator=g, dtype=torch.float64)
    assert float(nce_loss(u, v, neg, 50, 0.5)) == pytest.approx(_slow_nce(u, v, neg, 50, 0.5),
                                                                rel=1e-9)
    # per-sample negatives: row b uses its own set
    per = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    slow = sum(_slow_nce(u[b:b + 1], v[b:b + 1], per[b], 50, 0.5) for b in range(3)) / 3
    assert float(nce_loss(u, v, per, 50, 0.5)) == pytest.approx(slow, rel=1e-9)


def test_eq5_is_the_lambda_combination():
    g = torch.Generator().manual_seed(1)
    f, gj, m = (torch.randn(4, 8, generator=g, dtype=torch.float64) for _ in range(3))
    neg = torch.randn(5, 8, generator=g, dtype=torch.float64)
    a = _slow_nce(m, gj, neg, 100, 0.07)
    b = _slow_nce(m, f, neg, 100, 0.07)
    assert float(pirl_loss(f, gj, m, neg, 100)) == pytest.approx(0.5 * a + 0.5 * b, rel=1e-9)
    assert float(pirl_loss(f, gj, m, neg, 100, lam=1.0)) == pytest.approx(a, rel=1e-9)


def test_bank_moving_average_and_validation_leaves_it():
    bank = IndexedMemoryBank(10, 4, momentum=0.5, seed=0)
    old = bank.bank[3].clone()
    f = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    bank.update(torch.tensor([3]), f)
    new = 0.5 * old + 0.5 * torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(bank.bank[3], new / new.norm())
    crit = PIRLLoss(n_data=10, dim=4, n_negatives=5)
    before = crit.bank.bank.clone()
    crit(torch.randn(2, 4), torch.randn(2, 4), torch.tensor([0, 1]), update=False)
    assert torch.equal(crit.bank.bank, before)
    loss = crit(torch.randn(2, 4, requires_grad=True), torch.randn(2, 4), torch.tensor([0, 1]))
    assert not torch.equal(crit.bank.bank[:2], before[:2]) and torch.equal(crit.bank.bank[2:],
                                                                           before[2:])
    assert torch.isfinite(loss)
