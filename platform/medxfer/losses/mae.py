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

import torch
from torch import Tensor, nn

#: MAE's default masking ratio (sec. 4, "a high masking ratio (75%)").
MASK_RATIO = 0.75


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping patches, row-major, each flattened as (p, p, C).

    Args:
        images: Shape (B, C, H, W), H and W multiples of ``patch_size``.
        patch_size: p.

    Returns:
        Shape (B, N, p * p * C), N = (H / p) * (W / p).
    """
    b, c, h, w = images.shape
    p = int(patch_size)
    if p < 1 or h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch_size {patch_size}.")
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: Tensor, patch_size: int, channels: int,
               grid: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: Shape (B, N, p * p * C).
        patch_size: p.
        channels: C.
        grid: (H / p, W / p); default a square grid.

    Returns:
        Shape (B, C, H, W).
    """
    b, n, d = patches.shape
    p, c = int(patch_size), int(channels)
    if d != p * p * c:
        raise ValueError(f"patch dimension {d} != patch_size**2 * channels = {p * p * c}.")
    gh, gw = grid if grid is not None else (int(round(n ** 0.5)),) * 2
    if gh * gw != n:
        raise ValueError(f"{n} patches do not form a {gh}x{gw} grid; pass grid=(rows, cols).")
    x = patches.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, gh * p, gw * p)


def random_token_mask(batch_size: int, n_tokens: int, mask_ratio: float = MASK_RATIO,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Per image, a uniform random subset of ``round(n_tokens * mask_ratio)`` tokens to mask.

    Sampling is MAE's "random shuffle, keep the first (1 - ratio)" (sec. 3).

    Args:
        batch_size: B.
        n_tokens: N patches per image.
        mask_ratio: Fraction masked, in [0, 1); at least one token is kept.
        generator: Source of randomness (reproducible masks).

    Returns:
        ``idx_keep`` (B, N_keep) and ``idx_mask`` (B, N - N_keep), long, each row sorted.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}.")
    n_mask = min(int(round(n_tokens * mask_ratio)), n_tokens - 1)
    noise = torch.rand(batch_size, n_tokens, generator=generator)
    order = noise.argsort(dim=1)
    keep, masked = order[:, n_mask:], order[:, :n_mask]
    return keep.sort(dim=1).values.to(device), masked.sort(dim=1).values.to(device)


def mask_from_indices(idx_mask: Tensor, n_tokens: int) -> Tensor:
    """Boolean (B, N) mask, True at the masked tokens of ``idx_mask`` (B, N_mask)."""
    mask = torch.zeros(idx_mask.shape[0], n_tokens, dtype=torch.bool, device=idx_mask.device)
    return mask.scatter_(1, idx_mask, True)


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
