"""Masked autoencoder on a timm Vision Transformer: encoder of the visible patches, light decoder.

He et al. 2021 sec. 3, modelled on lightly's ``MaskedVisionTransformerTIMM`` and
``MAEDecoderTIMM`` building blocks:

* encoder (:class:`MAEEncoder`): the timm ViT embeds all patches, adds its position
  embeddings, keeps only the visible ones (``idx_keep``), prepends the class token and runs
  its blocks and final norm;
* decoder (:class:`MAEDecoder`): a linear map to the decoder width, a shared learned mask token
  at every removed position (order restored), fixed 2-D sin-cos position embeddings, a few
  transformer blocks and a linear head predicting the p * p * C pixels of every patch;
* :class:`MaskedAutoencoder` composes both with the masking of :mod:`medxfer.patch_layout`.

After pretraining the ViT (``mae.encoder.vit``) is the encoder to transfer; its state dict
loads into the backbone registered as ``vit_tiny_p4`` (:func:`tiny_vit`) when built with the
same sizes. Departures from the paper: the ViT keeps timm's learnable position embeddings
(initialised to sin-cos, as lightly does; the paper keeps them fixed), and the default sizes
are tiny (tests run at 28/32 px; the paper uses ViT-B/16+ at 224 px).

[0] MAE, 2021, https://arxiv.org/abs/2111.06377
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from medxfer.patch_layout import MASK_RATIO, mask_from_indices, patchify, random_token_mask


def sincos_pos_embed(dim: int, grid: tuple[int, int]) -> Tensor:
    """Fixed 2-D sin-cos position embeddings (MAE's), half of ``dim`` per axis.

    Returns:
        Shape (grid[0] * grid[1], dim), row-major over the patch grid.
    """
    if dim % 4:
        raise ValueError(f"sin-cos embedding needs dim divisible by 4, got {dim}.")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0))
    ys, xs = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64),
                            torch.arange(grid[1], dtype=torch.float64), indexing="ij")

    def axis(pos: Tensor) -> Tensor:
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)

    return torch.cat([axis(ys), axis(xs)], dim=1).float()


def tiny_vit(in_chans: int = 1, img_size: int = 32, patch_size: int = 4, embed_dim: int = 64,
             depth: int = 2, num_heads: int = 4) -> nn.Module:
    """A small timm ViT for 28-64 px images (tests, the synthetic data).

    ``dynamic_img_size=True``: any input side that is a multiple of ``patch_size`` works (the
    position embeddings are resampled), so one checkpoint serves 28 and 32 px. ``num_classes=0``:
    ``forward`` returns the class-token embedding (B, embed_dim); ``embed_dim`` is set.
    """
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                            embed_dim=embed_dim, depth=depth, num_heads=num_heads, num_classes=0,
                            dynamic_img_size=True)
    with torch.no_grad():
        grid = vit.patch_embed.grid_size
        vit.pos_embed[:, vit.num_prefix_tokens:] = sincos_pos_embed(embed_dim, grid)[None]
        vit.pos_embed[:, :vit.num_prefix_tokens] = 0.0
    return vit


class MAEEncoder(nn.Module):
    """Runs a timm ``VisionTransformer`` on the visible patches only.

    Args:
        vit: A timm ViT with a class token (``class_token=True``) and absolute position
            embeddings.
    """

    def __init__(self, vit: nn.Module):
        super().__init__()
        if getattr(vit, "cls_token", None) is None or getattr(vit, "pos_embed", None) is None:
            raise ValueError("MAEEncoder needs a timm ViT with a class token and pos_embed.")
        self.vit = vit
        self.patch_size = int(vit.patch_embed.patch_size[0])
        self.embed_dim = int(vit.embed_dim)

    def patch_tokens(self, images: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Patch tokens with position embeddings, the class token's embedding, and the grid."""
        from timm.layers import resample_abs_pos_embed

        x = self.vit.patch_embed(images)
        prefix = self.vit.num_prefix_tokens
        if x.ndim == 4:  # dynamic image size: (B, h, w, D)
            b, h, w, d = x.shape
            pos = resample_abs_pos_embed(self.vit.pos_embed, (h, w), num_prefix_tokens=prefix)
            x = x.reshape(b, h * w, d)
        else:
            h, w = self.vit.patch_embed.grid_size
            pos = self.vit.pos_embed
        cls = self.vit.cls_token + pos[:, :prefix]
        return x + pos[:, prefix:], cls, (h, w)

    def forward(self, images: Tensor, idx_keep: Tensor | None = None) -> Tensor:
        """Encode the kept patches.

        Args:
            images: Shape (B, C, H, W).
            idx_keep: Visible patch indices, (B, N_keep); None keeps all.

        Returns:
            Tokens: class token first. Shape: (B, 1 + N_keep, embed_dim).
        """
        x, cls, _ = self.patch_tokens(images)
        if idx_keep is not None:
            x = torch.gather(x, 1, idx_keep[..., None].expand(-1, -1, x.shape[-1]))
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.vit.norm_pre(x)
        return self.vit.norm(self.vit.blocks(x))


class MAEDecoder(nn.Module):
    """MAE's light decoder: tokens of the visible patches -> pixels of every patch.

    Args:
        embed_dim: Encoder width.
        patch_size: p.
        in_chans: C.
        decoder_dim, depth, num_heads: The decoder transformer (paper: 512, 8, 16).
    """

    def __init__(self, embed_dim: int, patch_size: int, in_chans: int = 1,
                 decoder_dim: int = 64, depth: int = 1, num_heads: int = 4):
        super().__init__()
        from timm.models.vision_transformer import Block

        self.decoder_dim = int(decoder_dim)
        self.embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.Sequential(*[Block(decoder_dim, num_heads, qkv_bias=True)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_dim, patch_size * patch_size * in_chans)

    def forward(self, tokens: Tensor, idx_keep: Tensor, n_patches: int,
                grid: tuple[int, int]) -> Tensor:
        """Predict all patches.

        Args:
            tokens: Encoder output, class token first. Shape: (B, 1 + N_keep, embed_dim).
            idx_keep: The visible patches' indices. Shape: (B, N_keep).
            n_patches: N.
            grid: Patch grid (rows, cols), rows * cols = N.

        Returns:
            Pixel predictions per patch. Shape: (B, N, p * p * C).
        """
        x = self.embed(tokens)
        b, d = x.shape[0], x.shape[-1]
        full = self.mask_token.expand(b, n_patches, d).clone()
        full.scatter_(1, idx_keep[..., None].expand(-1, -1, d), x[:, 1:])
        pos = sincos_pos_embed(d, grid).to(full)
        seq = torch.cat([x[:, :1], full + pos[None]], dim=1)
        return self.pred(self.norm(self.blocks(seq)))[:, 1:]


class MaskedAutoencoder(nn.Module):
    """Encoder + decoder + random masking; ``forward`` returns what :func:`mae_loss` takes.

    Args:
        vit: The timm ViT to pretrain (e.g. :func:`tiny_vit`).
        mask_ratio: Fraction of patches removed per image (0.75).
        decoder_dim, decoder_depth, decoder_heads: The decoder.
    """

    def __init__(self, vit: nn.Module, mask_ratio: float = MASK_RATIO, decoder_dim: int = 64,
                 decoder_depth: int = 1, decoder_heads: int = 4):
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}.")
        self.encoder = MAEEncoder(vit)
        self.in_chans = int(vit.patch_embed.proj.in_channels)
        self.mask_ratio = float(mask_ratio)
        self.decoder = MAEDecoder(self.encoder.embed_dim, self.encoder.patch_size, self.in_chans,
                                  decoder_dim, decoder_depth, decoder_heads)

    def forward(self, images: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Mask, encode, decode.

        Args:
            images: Shape (B, C, H, W), sides multiples of the patch size.
            generator: Draws the masks (reproducible).

        Returns:
            ``pred`` (B, N, P), ``target`` = patchify(images) (B, N, P) and ``mask`` (B, N),
            True at the removed patches.
        """
        p = self.encoder.patch_size
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        n = grid[0] * grid[1]
        idx_keep, idx_mask = random_token_mask(images.shape[0], n, self.mask_ratio, generator,
                                               images.device)
        tokens = self.encoder(images, idx_keep)
        pred = self.decoder(tokens, idx_keep, n, grid)
        return pred, patchify(images, p), mask_from_indices(idx_mask, n)
