"""MAE's patch layout and random masking, shared by the model and loss layers.

He et al. 2021, sec. 3: an image is cut into non-overlapping p x p patches and a random
``mask_ratio`` of them is removed per image. ``models.mae`` (the encoder sees only the kept
patches) and ``losses.mae`` (the loss is taken on the masked ones) both need this layout; they
are sibling layers that must not import each other, so it lives here, below both (pure torch,
no medxfer imports).

[0] MAE, 2021, https://arxiv.org/abs/2111.06377
"""

from __future__ import annotations

import torch
from torch import Tensor

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
