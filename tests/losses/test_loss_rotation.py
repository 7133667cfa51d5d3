"""Rotation prediction (Gidaris et al. 2018): batch builder and loss."""

import math

import pytest
import torch

from medxfer.losses import RotationLoss, rotation_batch


def test_batch_holds_four_rotations_with_labels():
    img = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    img[1] *= 10
    rot, labels = rotation_batch(img)
    assert rot.shape == (8, 1, 2, 2) and labels.tolist() == [0, 1, 2, 3] * 2
    # counter-clockwise by 90 degrees: the top row becomes [2, 4]
    assert rot[1, 0].tolist() == [[2.0, 4.0], [1.0, 3.0]]
    assert rot[2, 0].tolist() == [[4.0, 3.0], [2.0, 1.0]]
    assert rot[3, 0].tolist() == [[3.0, 1.0], [4.0, 2.0]]
    assert torch.equal(rot[4], img[1])
    with pytest.raises(ValueError, match="square"):
        rotation_batch(torch.zeros(1, 1, 2, 3))


def test_loss_is_mean_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(4).repeat(2)
    slow = sum(-math.log(math.exp(float(row[y])) / sum(math.exp(float(v)) for v in row))
               for row, y in zip(logits, labels)) / 8
    assert float(RotationLoss()(logits, labels)) == pytest.approx(slow, rel=1e-9)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        RotationLoss()(logits[:, :3], labels)
