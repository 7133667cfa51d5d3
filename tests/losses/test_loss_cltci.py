"""CL-TCI (seed 003 eq. 1-2): patient positives in-batch and with the MoCo patient queue."""

import copy
import math

import pytest
import torch

from medxfer.losses import CLTCILoss, CLTCIMoCoLoss, PatientQueue, cltci_moco_loss, momentum_update


def _slow_cltci(z, pids, tau):
    """Eq. 2 over 2N rows z (each with its patient id), averaged over anchors (eq. 1 / 2N)."""
    z = torch.nn.functional.normalize(z, dim=1)
    total = 0.0
    for i in range(len(z)):
        pos = [j for j in range(len(z)) if j != i and pids[j] == pids[i]]
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(len(z)) if k != i)
        total += -sum(math.log(math.exp(float(z[i] @ z[j]) / tau) / den) for j in pos) / len(pos)
    return total / len(z)


def test_simclr_variant_matches_eq2():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(5, 2, 4, generator=g, dtype=torch.float64)
    pids = torch.tensor([7, 3, 7, 9, 3])
    rows = torch.cat([f[:, 0], f[:, 1]])
    assert float(CLTCILoss(0.1)(f, pids)) == pytest.approx(_slow_cltci(rows, pids.repeat(2), 0.1),
                                                           rel=1e-9)


def test_moco_variant_matches_slow():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 4, generator=g, dtype=torch.float64)
    k = torch.randn(3, 4, generator=g, dtype=torch.float64)
    qk, qi = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.tensor([1, 2, 1, 4, 5])
    pids = torch.tensor([1, 3, 5])
    nz = torch.nn.functional.normalize
    expected = 0.0
    for i in range(3):
        cands = [nz(k[i], dim=0)] + [nz(x, dim=0) for x in qk]
        pos = [0] + [1 + j for j in range(5) if qi[j] == pids[i]]
        s = [float(nz(q[i], dim=0) @ c) / 0.2 for c in cands]
        den = sum(math.exp(x) for x in s)
        expected += -sum(s[p] - math.log(den) for p in pos) / len(pos) / 3
    assert float(cltci_moco_loss(q, k, pids, qk, qi, 0.2)) == pytest.approx(expected, rel=1e-9)


def test_patient_queue_fifo_and_ids():
    queue = PatientQueue(size=4, dim=2)
    assert len(queue) == 0 and queue.get()[0].shape == (0, 2)
    for start in (0, 3, 6):  # three batches of 3 keys, keys encode their insertion index
        keys = torch.arange(start, start + 3, dtype=torch.float32)[:, None].repeat(1, 2)
        queue.enqueue(keys, ids=torch.arange(start, start + 3) + 100)
    keys, ids = queue.get()
    assert keys[:, 0].tolist() == [5, 6, 7, 8]  # oldest first, 0..4 evicted
    assert ids.tolist() == [105, 106, 107, 108]  # ids travel with their keys
    with pytest.raises(ValueError, match="patient ids"):
        queue.enqueue(torch.zeros(1, 2))
    queue.enqueue(torch.full((6, 2), 9.0), ids=torch.arange(6))  # more than size: keep last 4
    assert queue.get()[1].tolist() == [2, 3, 4, 5]


def test_moco_loss_enqueues_after_use_and_queue_positives_matter():
    loss_fn = CLTCIMoCoLoss(0.1, queue_size=8, dim=3)
    q, k = torch.randn(2, 3), torch.randn(2, 3)
    pids = torch.tensor([0, 1])
    assert float(loss_fn(q, k, pids)) == pytest.approx(0.0, abs=1e-6)  # empty queue: own key only
    assert loss_fn.queue.get()[1].tolist() == [0, 1]
    # A queue of the same patients' keys lowers the loss compared to other patients' keys.
    # The queue holds copies of the queries: positives when they carry the query's patient id.
    torch.manual_seed(0)
    q2, k2 = torch.randn(2, 3), torch.randn(2, 3)
    same = cltci_moco_loss(q2, k2, pids, q2.clone(), pids, 0.1)
    other = cltci_moco_loss(q2, k2, pids, q2.clone(), pids + 10, 0.1)
    assert float(same) < float(other)


def test_moco_gradient_reaches_query_only():
    q = torch.randn(3, 4, requires_grad=True)
    k = torch.randn(3, 4, requires_grad=True)
    cltci_moco_loss(q, k, torch.tensor([0, 1, 0]), torch.randn(4, 4),
                    torch.tensor([0, 1, 2, 3])).backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert k.grad is None


def test_momentum_update():
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = copy.deepcopy(target)
    momentum_update(online, target, m=0.9)
    assert torch.allclose(target.weight, 0.9 * before.weight + 0.1 * online.weight)
    momentum_update(online, target, m=0.0)
    assert torch.equal(target.bias, online.bias)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        momentum_update(online, target, m=1.5)
