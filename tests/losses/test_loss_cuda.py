"""The losses give the same values on CUDA as on CPU (skipped without a GPU)."""

import pytest
import torch

from medxfer.losses import DCELoss, NTXentLoss, SupConLoss, SwaVLoss, cltci_moco_loss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_losses_match_cpu():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    y = torch.tensor([0, 1, 0, 1, 2, 2, 3, 3])
    x = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1
    a = torch.rand(2, 1, 16, 16, generator=g)
    cases = [
        (NTXentLoss(0.5), (z0, z1)),
        (SupConLoss(0.1), (torch.stack([z0, z1], 1), y)),
        (SwaVLoss(epsilon=0.05), ([z0[:, :4], z1[:, :4]],)),
        (DCELoss(kernel_size=4), (x, a)),
    ]
    for fn, args in cases:
        to_cuda = [([t.cuda() for t in v] if isinstance(v, list) else v.cuda()) for v in args]
        assert torch.allclose(fn(*args), fn.cuda()(*to_cuda).cpu(), atol=1e-4), type(fn).__name__
    cpu = cltci_moco_loss(z0, z1, y, z1[:4], y[:4])
    gpu = cltci_moco_loss(z0.cuda(), z1.cuda(), y.cuda(), z1[:4].cuda(), y[:4].cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)
