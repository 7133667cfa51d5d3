"""Shallow U-Net that outputs DCE's per-pixel alpha map A (seed 000 sec. 3.1, Fig. 3c)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class ShallowUNet(nn.Module):
    """A U-Net with ``depth`` poolings; output the alpha map with the input's spatial size.

    The seed gives no layer counts; this keeps the U-Net shape (encoder, skip connections,
    decoder) small: ``depth`` 2 and 16 base channels are ~30k parameters. The output goes
    through softplus so alpha >= 0: a negative alpha would invert the LE-curve (eq. 1).

    Args:
        in_chans: Input channels (1 for grayscale CXR).
        out_chans: Alpha-map channels (1: one alpha per pixel).
        base_channels: Channels of the first level, doubled per level.
        depth: Number of 2x poolings; inputs need H and W divisible by 2**depth (``stride``).
        init_alpha: The output starts near this value everywhere (bias of the last conv).

    Shape: (B, in_chans, H, W) -> (B, out_chans, H, W).
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, base_channels: int = 16,
                 depth: int = 2, init_alpha: float = 1.0):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"depth and base_channels must be >= 1, got {depth}, {base_channels}.")
        if init_alpha <= 0:
            raise ValueError(f"init_alpha must be > 0 (softplus output), got {init_alpha}.")
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        self.stride = 2 ** depth
        self.down = nn.ModuleList([_block(in_chans, chans[0])] +
                                  [_block(chans[i], chans[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.out = nn.Conv2d(chans[0], out_chans, 1)
        nn.init.normal_(self.out.weight, std=0.01)  # small: alpha starts near init_alpha
        with torch.no_grad():  # softplus^-1(init_alpha)
            self.out.bias.fill_(float(torch.log(torch.expm1(torch.tensor(float(init_alpha))))))

    def forward(self, x: Tensor) -> Tensor:
        """Alpha map A >= 0 for image x."""
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f"input size {h}x{w} must be divisible by {self.stride} "
                             f"(2**depth); resize or pad the image.")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = dec(torch.cat([up(x), skip], dim=1))
        return F.softplus(self.out(x))
