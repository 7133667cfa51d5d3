"""mae: masked-autoencoder pretraining of a timm Vision Transformer.

Seed ``000_3dd3de5c534b555f.txt`` sec. 4, Table 2 compares SCC with MAE (and DCE+MAE, the
``dce_mae`` method) pretrained on the target's unlabelled images. He et al. 2021 sec. 3: a
random 75% of the patches of every image is removed; the ViT encoder sees only the visible
patches, a light decoder (mask tokens at the removed places, fixed sin-cos positions) predicts
the pixels of every patch, and the loss is the mean squared error on the removed patches only
(optionally against per-patch normalised pixels, ``norm_pix_loss``). Parts:
:class:`medxfer.models.MaskedAutoencoder` (modelled on lightly's ``MaskedVisionTransformerTIMM``
and ``MAEDecoderTIMM``) and :class:`medxfer.losses.MAELoss`.

``model.backbone`` must be a timm ViT with a class token: ``vit_tiny_p4`` (default; patch 4,
for 28-64 px) or a timm name such as ``vit_base_patch16_224``; image sides must be multiples of
the patch size. Training masks are drawn from the seeded global stream (checkpointed, so a
resumed run draws the same masks); validation uses the same masks every epoch (a generator
seeded by ``train.seed``), so ``val_loss`` is comparable across epochs.

It runs in the contrastive family's loop (:mod:`medxfer.methods.contrastive`, one augmented
view per image): per-epoch ``train_loss``/``val_loss``, checkpoints, selection, an optional
linear probe on the class token, and ``encoder.pt``: the ViT's state dict, which loads into the
same backbone (``model.backbone: vit_tiny_p4``, ``model.weights: .../encoder.pt``) for
``finetune``.

Departures: the paper's ViT-B/16 at 224 px, 1600 epochs, AdamW (lr 1.5e-4 x batch / 256,
betas 0.9/0.95, weight decay 0.05) become the family's defaults here (SGD, cosine; the example
config ``examples/train_mae.yaml`` uses Adam); the ViT keeps timm's learnable position
embeddings (initialised to sin-cos, as lightly does).

[0] MAE, 2021, https://arxiv.org/abs/2111.06377
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from medxfer.config import deep_merge
from medxfer.errors import MedxferInputError
from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveParts
from medxfer.methods.registry import Method, MethodOptions, register_method
from medxfer.patch_layout import MASK_RATIO

DEFAULTS: dict[str, Any] = deep_merge(contrastive.DEFAULTS, {"model": {"backbone": "vit_tiny_p4"}})


class MAEOptions(MethodOptions):
    """``method_config`` of mae.

    Attributes:
        mask_ratio: fraction of patches removed per image (0.75).
        norm_pix_loss: per-patch normalised targets (paper Table 1d's better variant; off by
            default, as in lightly's example).
        decoder_dim, decoder_depth, decoder_heads: the light decoder (paper: 512, 8, 16).
        probe_epochs, probe_lr: the optional linear probe on the class token.
    """

    mask_ratio: float = Field(MASK_RATIO, gt=0, lt=1)
    norm_pix_loss: bool = False
    decoder_dim: int = Field(64, ge=4, multiple_of=4)
    decoder_depth: int = Field(1, ge=1)
    decoder_heads: int = Field(4, ge=1)
    probe_epochs: int = Field(0, ge=0)
    probe_lr: float = Field(1e-2, gt=0)


class MAENet(nn.Module):
    """:class:`~medxfer.models.MaskedAutoencoder` whose ``encoder`` is the ViT itself (what
    ``encoder.pt`` holds and the probe embeds with).

    ``forward(images (B, C, H, W), generator=None) -> (pred, target, mask)`` as the
    autoencoder's.
    """

    def __init__(self, vit: nn.Module, opts: MAEOptions):
        from medxfer.models import MaskedAutoencoder

        super().__init__()
        self.mae = MaskedAutoencoder(vit, opts.mask_ratio, opts.decoder_dim, opts.decoder_depth,
                                     opts.decoder_heads)

    @property
    def encoder(self) -> nn.Module:
        return self.mae.encoder.vit

    def forward(self, images: Tensor, generator: torch.Generator | None = None):
        return self.mae(images, generator)


def build_vit(cfg, chans: int) -> nn.Module:
    """``model.backbone`` (local weights only), checked to be a ViT with a class token.

    Raises:
        MedxferInputError: not a ViT with a class token, or a side not divisible by its patch.
    """
    from medxfer.models import create_backbone

    vit = create_backbone(cfg.model.backbone, in_chans=chans, weights=cfg.model.weights)
    if getattr(vit, "cls_token", None) is None or getattr(vit, "pos_embed", None) is None:
        raise MedxferInputError(f"backbone {cfg.model.backbone!r} is not a ViT with a class "
                                "token; MAE needs one, e.g. vit_tiny_p4 or a timm vit_* name",
                                field="model.backbone")
    patch = int(vit.patch_embed.patch_size[0])
    if cfg.data.size % patch:
        raise MedxferInputError(f"data.size {cfg.data.size} is not a multiple of the ViT's "
                                f"patch size {patch}", field="data.size")
    return vit


def build_parts(cfg, opts: MAEOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import MAELoss

    net = MAENet(build_vit(cfg, chans), opts)
    criterion = MAELoss(opts.norm_pix_loss)
    val_masks = torch.Generator()

    def loss(net, batch, train: bool):
        x, _, _ = batch
        return criterion(*net(x, None if train else val_masks))

    def on_epoch(epoch: int) -> None:
        val_masks.manual_seed(cfg.train.seed)  # the same validation masks every epoch

    return ContrastiveParts(net=net, loss=loss, views=lambda pipeline: pipeline,
                            on_epoch=on_epoch)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """MAE pretraining on ``data.flag``; see the module docstring."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="mae", train_loop_per_worker=train_loop_per_worker, config_schema=MAEOptions,
    defaults=DEFAULTS,
    description="masked autoencoder on a timm ViT (75% of patches masked); saves the ViT"))
