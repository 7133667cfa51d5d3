"""SwAV (seed 001): Sinkhorn marginals, eq. 1 swapped prediction, per-modality prototypes,
hybrid loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from medxfer.losses import SwaVHybridLoss, SwaVLoss, sinkhorn, swav_loss_per_sample
from medxfer.models import SwaVPrototypes


def _slow_sinkhorn(scores, eps, n_iters):
    """SwAV's Algorithm: Q = exp(C^T Z / eps), alternate row (1/K) and column (1/B) sums."""
    q = [[math.exp(float(scores[b, k]) / eps) for b in range(scores.shape[0])]
         for k in range(scores.shape[1])]
    kk, bb = len(q), len(q[0])
    for _ in range(n_iters):
        for k in range(kk):
            r = sum(q[k]) * kk
            q[k] = [x / r for x in q[k]]
        for b in range(bb):
            c = sum(q[k][b] for k in range(kk)) * bb
            for k in range(kk):
                q[k][b] /= c
    return torch.tensor([[q[k][b] * bb for k in range(kk)] for b in range(bb)], dtype=torch.float64)


@pytest.mark.parametrize("b,k", [(8, 4), (6, 12), (16, 16)])
def test_sinkhorn_equipartition_marginals(b, k):
    g = torch.Generator().manual_seed(b + k)
    scores = (F.normalize(torch.randn(b, 5, generator=g), dim=1)
              @ F.normalize(torch.randn(k, 5, generator=g), dim=1).T)
    q = sinkhorn(scores, epsilon=0.05, n_iters=1000)  # Table I uses 3: approximate marginals
    assert q.shape == (b, k) and (q >= 0).all()
    assert torch.allclose(q.sum(dim=1), torch.ones(b), atol=1e-3)  # each sample: one unit
    assert torch.allclose(q.sum(dim=0), torch.full((k,), b / k), atol=1e-3)  # each prototype: B/K


def test_sinkhorn_matches_slow_and_has_no_grad():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    q = sinkhorn(scores, 0.5, 3)
    assert not q.requires_grad
    assert torch.allclose(q, _slow_sinkhorn(scores.detach(), 0.5, 3), atol=1e-10)


def test_swapped_prediction_matches_eq1():
    g = torch.Generator().manual_seed(1)
    s1 = torch.randn(6, 4, generator=g, dtype=torch.float64)
    s2 = torch.randn(6, 4, generator=g, dtype=torch.float64)
    tau, eps = 0.1, 0.05
    q1, q2 = _slow_sinkhorn(s1, eps, 3), _slow_sinkhorn(s2, eps, 3)
    expected = 0.0
    for n in range(6):
        def log_p(s, i, n=n):
            return (float(s[n, i]) / tau
                    - math.log(sum(math.exp(float(s[n, j]) / tau) for j in range(4))))
        expected += (-sum(float(q2[n, i]) * log_p(s1, i) for i in range(4))
                     - sum(float(q1[n, i]) * log_p(s2, i) for i in range(4)))
    assert float(SwaVLoss(tau, eps, 3)([s1, s2])) == pytest.approx(expected / 6, rel=1e-8)
    # Symmetric in the views.
    assert float(SwaVLoss(tau, eps, 3)([s2, s1])) == pytest.approx(expected / 6, rel=1e-8)


def test_multimodality_codes_use_equipartition_per_modality():
    g = torch.Generator().manual_seed(2)
    s1 = torch.randn(8, 4, generator=g, dtype=torch.float64)
    s2 = torch.randn(8, 4, generator=g, dtype=torch.float64)
    per = swav_loss_per_sample([s1, s2], 0.1, 0.05, 3, n_modalities=2)
    first = swav_loss_per_sample([s1[:4], s2[:4]], 0.1, 0.05, 3)
    second = swav_loss_per_sample([s1[4:], s2[4:]], 0.1, 0.05, 3)
    assert torch.allclose(per, torch.cat([first, second]))
    # Joint codes differ.
    assert not torch.allclose(per, swav_loss_per_sample([s1, s2], 0.1, 0.05, 3))
    with pytest.raises(ValueError, match="multiple of n_modalities"):
        swav_loss_per_sample([s1[:7], s2[:7]], n_modalities=2)


def test_per_modality_prototypes_get_gradients_only_from_their_samples():
    torch.manual_seed(0)
    protos = SwaVPrototypes(dim=5, n_prototypes=4, n_modalities=2)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    loss_fn = SwaVLoss(n_modalities=2, epsilon=0.05)

    def grads(a, b):
        protos.zero_grad()
        loss_fn([protos(a), protos(b)]).backward()
        return protos.weight.grad.clone()  # (M, K, D)

    g = grads(z1, z2)
    assert g[0].abs().sum() > 0 and g[1].abs().sum() > 0
    # Changing modality 1's samples (rows 3..5) leaves modality 0's prototype gradient as is.
    z1b, z2b = z1.clone(), z2.clone()
    z1b[3:], z2b[3:] = torch.randn(3, 5), torch.randn(3, 5)
    g2 = grads(z1b, z2b)
    assert torch.allclose(g2[0], g[0], atol=1e-6)
    assert not torch.allclose(g2[1], g[1], atol=1e-6)


def test_hybrid_reduces_to_each_term():
    g = torch.Generator().manual_seed(3)
    s = [torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)]
    logits = torch.randn(6, 3, generator=g, requires_grad=True)
    labels = torch.tensor([0, 2, 1, -1, -1, -1])
    labelled = labels >= 0
    ss = SwaVLoss()(s)
    ce = F.cross_entropy(logits[:3], labels[:3], reduction="sum") / 6  # eq. 7 divides by N
    kw = dict(logits=logits, labels=labels, labelled=labelled)
    assert torch.allclose(SwaVHybridLoss(alpha=1.0, beta=0.0)(s, **kw), ss)
    assert torch.allclose(SwaVHybridLoss(alpha=0.0, beta=2.0)(s, **kw), 2 * ce)
    assert torch.allclose(SwaVHybridLoss(alpha=0.5, beta=2.0)(s, **kw), 0.5 * ss + 2 * ce)
    SwaVHybridLoss(alpha=0.0, beta=1.0)(s, **kw).backward()
    assert logits.grad[3:].abs().sum() == 0 and logits.grad[:3].abs().sum() > 0  # unlabelled rows
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]])
    bce = F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum") / 6
    hybrid = SwaVHybridLoss(alpha=0.0, beta=1.0, multilabel=True)
    assert torch.allclose(hybrid(s, logits=logits, labels=y), bce)


def test_table1_defaults_and_validation():
    loss = SwaVLoss()
    assert (loss.temperature, loss.epsilon, loss.sinkhorn_iterations) == (0.1, 0.03, 3)
    with pytest.raises(ValueError, match="must be > 0"):
        SwaVLoss(temperature=0)
    with pytest.raises(ValueError, match="Nothing to optimise"):
        SwaVHybridLoss(alpha=0.0)([torch.randn(2, 3), torch.randn(2, 3)])



def _sinkhorn_worker(rank, store, scores, out):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        part = scores[rank * 3:(rank + 1) * 3]
        torch.save(sinkhorn(part, 0.05, 3, gather_distributed=True), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_sinkhorn_gathers_the_global_batch_over_two_workers(tmp_path):
    import torch.multiprocessing as mp
    scores = torch.randn(6, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out = tmp_path / "codes"
    mp.spawn(_sinkhorn_worker, args=(str(tmp_path / "store"), scores, str(out)), nprocs=2)
    codes = torch.cat([torch.load(f"{out}.{r}") for r in range(2)])
    assert torch.allclose(codes, sinkhorn(scores, 0.05, 3), atol=1e-10)
    apart = torch.cat([sinkhorn(scores[:3], 0.05, 3), sinkhorn(scores[3:], 0.05, 3)])
    assert not torch.allclose(apart, codes)
