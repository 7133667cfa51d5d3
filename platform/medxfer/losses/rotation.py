"""Rotation prediction: the 4-way pretext task of Gidaris et al. 2018 (RotNet).

Sec. 2.2-2.3: every image x is rotated by each of the K = 4 multiples of 90 degrees,
g(x | y) = Rot(x, 90 y) for y in {0, 1, 2, 3}; the network F predicts the rotation and is
trained with the mean cross-entropy over the 4 rotated copies of each image:

    loss(x_i) = -1/K sum_{y=1}^{K} log F^y(g(x_i | y))

Baseline "Rotation" of seed 003 (``003_4aa9fa56a835f729.txt`` Table I, ref. [31]). Feeding all
four rotations of an image in the same batch is what the paper found best (sec. 2.3).

[0] RotNet, 2018, https://arxiv.org/abs/1803.07728
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Rotations, in multiples of 90 degrees counter-clockwise; the label is the index.
N_ROTATIONS = 4


def rotation_batch(images: Tensor) -> tuple[Tensor, Tensor]:
    """All four rotations of every image, image-major, with their labels.

    Args:
        images: Shape (B, C, H, W), H == W (a rotation by 90 degrees must keep the shape).

    Returns:
        ``rotated`` of shape (4B, C, H, W), row ``4 i + y`` is image i rotated by 90 y degrees
        counter-clockwise, and ``labels`` (4B,) long with value y.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square (B, C, H, H), got {tuple(images.shape)}.")
    rotated = torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(N_ROTATIONS)],
                          dim=1)
    labels = torch.arange(N_ROTATIONS, device=images.device).repeat(images.shape[0])
    return rotated.flatten(0, 1), labels


def rotation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of the rotation classifier (pure function).

    Args:
        logits: Shape (4B, 4).
        labels: Shape (4B,), values in {0, 1, 2, 3}.
    """
    if logits.ndim != 2 or logits.shape[1] != N_ROTATIONS:
        raise ValueError(f"logits must have shape (n, {N_ROTATIONS}), got {tuple(logits.shape)}.")
    return F.cross_entropy(logits, labels)


class RotationLoss(nn.Module):
    """Rotation-prediction loss (Gidaris et al. 2018 eq. 1-2), see :func:`rotation_loss`."""

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Args: logits (4B, 4); labels (4B,). Returns the scalar loss."""
        return rotation_loss(logits, labels)
