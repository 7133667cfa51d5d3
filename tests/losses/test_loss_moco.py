"""Plain MoCo v2 (He et al. 2020 eq. 1-2): InfoNCE with a queue, momentum update."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from medxfer.losses import MoCoLoss, cltci_moco_loss, moco_loss
from medxfer.losses.moco import MOMENTUM, momentum_update


def _slow_moco(q, k, queue, tau):
    total = 0.0
    for qi, ki in zip(q, k):
        qn, kn = qi / qi.norm(), ki / ki.norm()
        pos = math.exp(float(qn @ kn) / tau)
        neg = sum(math.exp(float(qn @ (n / n.norm())) / tau) for n in queue)
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def test_matches_eq1_and_cltci_without_patient_positives():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g,
                                                                            dtype=torch.float64)
    queue = torch.randn(7, 6, generator=g, dtype=torch.float64)
    loss = moco_loss(q, k, queue, 0.2)
    assert float(loss) == pytest.approx(_slow_moco(q, k, queue, 0.2), rel=1e-9)
    # CL-TCI-MoCo with no shared patient between queries and queue is plain MoCo.
    same = cltci_moco_loss(q, k, torch.arange(4), queue, torch.arange(100, 107), 0.2)
    assert float(same) == pytest.approx(float(loss), rel=1e-9)


def test_queue_is_fifo_and_starts_empty():
    torch.manual_seed(0)
    crit = MoCoLoss(temperature=0.2, queue_size=3, dim=2)
    q, k = torch.randn(2, 2), torch.randn(2, 2)
    assert float(crit(q, k)) == pytest.approx(0.0, abs=1e-6)  # only the positive
    q2, k2 = torch.randn(2, 2), torch.randn(2, 2)
    expected = _slow_moco(q2.double(), k2.double(), F.normalize(k, dim=1).double(), 0.2)
    assert float(crit(q2, k2)) == pytest.approx(expected, rel=1e-5)
    keys, _ = crit.memory_bank.get()
    assert torch.allclose(keys, F.normalize(torch.cat([k[1:], k2]), dim=1))


def test_momentum_update_uses_moco_momentum():
    assert MOMENTUM == 0.999
    online = torch.nn.Linear(3, 2)
    target = copy.deepcopy(online)
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.clone()
    momentum_update(online, target, MOMENTUM)
    assert torch.allclose(target.weight, 0.999 * before + 0.001 * online.weight)
