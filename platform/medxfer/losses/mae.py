"""Masked autoencoder (MAE) reconstruction loss with its patchify and random-masking helpers.

He et al. 2021, sec. 3 ("MAE encoder / decoder / reconstruction target"): an image is cut into
non-overlapping p x p patches; a random ``mask_ratio`` (75%) of them is removed per image
(uniform sampling without replacement); the decoder predicts the pixels of every patch and the
loss is the mean squared error *on the masked patches only*; optionally each target patch is
normalised by its own mean and variance (``norm_pix_loss``, "per-patch normalized pixels"):

    L = 1/|M| sum_{i in M} 1/P sum_p (x_hat_{i,p} - t_{i,p})^2,
    t_i = (x_i - mean(x_i)) / sqrt(var(x_i) + 1e-6)   (or x_i without normalisation)

with M the masked patches of the batch and P = p * p * C values per patch. Used as a baseline
by seed 000 (``000_3dd3de5c534b555f.txt`` sec. 4, Table 2: MAE and DCE+MAE).

[0] MAE, 2021, https://arxiv.org/abs/2111.06377
"""

from __future__ import annotations

from torch import Tensor, nn

from medxfer.patch_layout import (MASK_RATIO, mask_from_indices, patchify,
                                  random_token_mask, unpatchify)

__all__ = ["MASK_RATIO", "MAELoss", "mae_loss", "mask_from_indices", "normalize_patches",
           "patchify", "random_token_mask", "unpatchify"]


def normalize_patches(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-patch normalised targets (MAE's ``norm_pix_loss``). Shape kept: (B, N, P)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True, unbiased=True)
    return (patches - mean) / (var + eps).sqrt()


def mae_loss(pred: Tensor, target: Tensor, mask: Tensor, norm_pix_loss: bool = False) -> Tensor:
    """MAE reconstruction loss on the masked patches only (pure function).

    Args:
        pred: Decoder output per patch. Shape: (B, N, P).
        target: :func:`patchify` of the input image. Shape: (B, N, P).
        mask: True where the patch was masked (removed from the encoder). Shape: (B, N).
        norm_pix_loss: Normalise each target patch by its mean and variance first.

    Returns:
        Scalar: mean over masked patches of the per-patch mean squared error.
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must be (B, N, P), (B, N, P) and (B, N).")
    if norm_pix_loss:
        target = normalize_patches(target)
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    m = mask.to(per_patch.dtype)
    if float(m.sum()) == 0:
        raise ValueError("no masked patch: the MAE loss is defined on masked patches only.")
    return (per_patch * m).sum() / m.sum()


class MAELoss(nn.Module):
    """MAE reconstruction loss (He et al. 2021 sec. 3), see :func:`mae_loss`.

    Args:
        norm_pix_loss: Per-patch normalised targets (the paper's better variant, Table 1d).
    """

    def __init__(self, norm_pix_loss: bool = False):
        super().__init__()
        self.norm_pix_loss = bool(norm_pix_loss)

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Args: pred, target (B, N, P); mask (B, N) bool. Returns the scalar loss."""
        return mae_loss(pred, target, mask, self.norm_pix_loss)
