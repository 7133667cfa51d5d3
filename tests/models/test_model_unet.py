"""Shallow U-Net: alpha map shape, positivity, size check, gradients into the encoder."""

import pytest
import torch

from medxfer.losses import DCELoss
from medxfer.models import ShallowUNet


@pytest.mark.parametrize("size", [(16, 16), (32, 24), (28, 28)])
def test_alpha_map_shape_and_positive(size):
    net = ShallowUNet(in_chans=1, base_channels=4, depth=2, init_alpha=1.5)
    a = net(torch.rand(2, 1, *size) * 2 - 1)
    assert a.shape == (2, 1, *size) and (a > 0).all()
    assert float(a.detach().mean()) == pytest.approx(1.5, abs=0.2)  # starts near init_alpha


def test_size_not_divisible_raises():
    with pytest.raises(ValueError, match="divisible by 8"):
        ShallowUNet(depth=3, base_channels=4)(torch.rand(1, 1, 20, 20))


def test_dce_training_step_updates_encoder():
    torch.manual_seed(0)
    net = ShallowUNet(base_channels=4, depth=2)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    DCELoss(kernel_size=4)(x, net(x)).backward()
    first = net.down[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
