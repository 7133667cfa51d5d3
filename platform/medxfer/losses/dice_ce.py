"""Multi-class soft Dice + cross-entropy, the segmentation fine-tuning loss.

Seed 003 (``003_4aa9fa56a835f729.txt`` sec. IV) fine-tunes U-Net / DeepLabV3+ on lung masks
(three classes: background, left lung, right lung) and reports Dice; the paper does not name
the training loss, so we use the common Dice + CE combination (nnU-Net, Isensee et al. 2021):

    L = w_ce CE(logits, y) + w_dice (1 - 1/|C| sum_{c in C} SoftDice_c)
    SoftDice_c = (2 sum_{b,x} p_{b,c,x} y_{b,c,x} + s) / (sum p_{b,c,x} + sum y_{b,c,x} + s)

with p the softmax over classes, y the one-hot labels, s a small smoothing term and C the
foreground classes (background excluded by default, ``include_background=True`` adds it). The
Dice sums run over the whole batch ("batch Dice"), so a class absent from one image does not
produce a 0/0 term.

[0] V-Net soft Dice, 2016, https://arxiv.org/abs/1606.04797
[1] nnU-Net, 2021, https://doi.org/10.1038/s41592-020-01008-z
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def soft_dice_per_class(logits: Tensor, target: Tensor, smooth: float = 1e-5) -> Tensor:
    """Soft Dice of each class over the batch.

    Args:
        logits: Shape (B, K, H, W).
        target: Class indices. Shape: (B, H, W), long, values in [0, K).

    Returns:
        Shape (K,).
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits must be (B, K, H, W) and target (B, H, W), got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}.")
    k = logits.shape[1]
    p = logits.softmax(dim=1)
    y = F.one_hot(target.long(), k).permute(0, 3, 1, 2).to(p.dtype)
    inter = (p * y).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + y.sum(dim=(0, 2, 3))
    return (2 * inter + smooth) / (denom + smooth)


def dice_ce_loss(logits: Tensor, target: Tensor, *, dice_weight: float = 1.0,
                 ce_weight: float = 1.0, include_background: bool = False,
                 smooth: float = 1e-5) -> Tensor:
    """Dice + CE (pure function); see the module docstring.

    Args:
        logits: Shape (B, K, H, W), K >= 2.
        target: Shape (B, H, W), long class indices.
        dice_weight, ce_weight: Term weights.
        include_background: Average the Dice term over class 0 too.
        smooth: s.

    Returns:
        Scalar loss.
    """
    dice = soft_dice_per_class(logits, target, smooth)
    dice = dice if include_background else dice[1:]
    return ce_weight * F.cross_entropy(logits, target.long()) + dice_weight * (1 - dice.mean())


class DiceCELoss(nn.Module):
    """Multi-class Dice + cross-entropy loss, see :func:`dice_ce_loss`.

    Args:
        dice_weight, ce_weight: Term weights (1, 1).
        include_background: Dice over class 0 as well (default: foreground only).
        smooth: Smoothing s of the soft Dice.
    """

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0,
                 include_background: bool = False, smooth: float = 1e-5):
        super().__init__()
        if dice_weight < 0 or ce_weight < 0 or dice_weight + ce_weight == 0:
            raise ValueError(f"weights must be >= 0 and not both 0, got dice_weight="
                             f"{dice_weight}, ce_weight={ce_weight}.")
        self.dice_weight, self.ce_weight = float(dice_weight), float(ce_weight)
        self.include_background, self.smooth = bool(include_background), float(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Args: logits (B, K, H, W); target (B, H, W) long. Returns the scalar loss."""
        if logits.shape[1] < 2:
            raise ValueError(f"need K >= 2 classes (background + foreground), got "
                             f"{logits.shape[1]}.")
        return dice_ce_loss(logits, target, dice_weight=self.dice_weight,
                            ce_weight=self.ce_weight, include_background=self.include_background,
                            smooth=self.smooth)


__all__ = ["DiceCELoss", "dice_ce_loss", "soft_dice_per_class"]
