"""rotation: self-supervised pretraining by 4-way rotation prediction (RotNet).

Seed ``003_4aa9fa56a835f729.txt`` Table I, row "Rotation" (sec. IV, baseline (1): "a
pretext-based method that uses image rotation prediction to pre-train the encoder", ref. [31],
Gidaris et al. 2018). Every (augmented) image of a batch is fed in all four rotations by
0/90/180/270 degrees (RotNet sec. 2.3: all four in the same batch works best,
:func:`medxfer.losses.rotation_batch`); encoder + a linear 4-way classifier predict the
rotation, trained with the mean cross-entropy (eq. 1-2, :class:`medxfer.losses.RotationLoss`).
Labels of the target are not used. Images must be square (a 90-degree turn keeps the shape).

It runs in the contrastive family's loop (:mod:`medxfer.methods.contrastive`: one augmented
view per image, ``data.transforms`` default: crop 0.6-1.0, rotation up to 15 degrees, flip):
per-epoch ``train_loss``/``val_loss``, checkpoints, selection, an optional linear probe, and
``encoder.pt`` (the encoder without the rotation classifier) for ``finetune``/``segment``.

Departure: RotNet's classifier sits on a middle block of a NIN; here it is a linear layer on
the pooled embedding of ``model.backbone`` (the encoder the segmentation nets take).

[0] RotNet, 2018, https://arxiv.org/abs/1803.07728
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import Tensor, nn

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveParts
from medxfer.methods.registry import Method, MethodOptions, register_method


class RotationOptions(MethodOptions):
    """``method_config`` of rotation.

    Attributes:
        probe_epochs: linear-probe epochs after pretraining (0: no probe).
        probe_lr: the probe's Adam learning rate.
    """

    probe_epochs: int = Field(0, ge=0)
    probe_lr: float = Field(1e-2, gt=0)


class RotationNet(nn.Module):
    """Encoder + linear rotation classifier: (B, C, H, W) -> logits (B, 4)."""

    def __init__(self, encoder: nn.Module, n_rotations: int):
        super().__init__()
        self.encoder, self.classifier = encoder, nn.Linear(encoder.embed_dim, n_rotations)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.encoder(x))


def one_view(pipeline):
    """A single augmented view per image (the item's ``views``)."""
    return pipeline


def build_parts(cfg, opts: RotationOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import RotationLoss, rotation_batch
    from medxfer.losses.rotation import N_ROTATIONS
    from medxfer.models import create_backbone

    encoder = create_backbone(cfg.model.backbone, in_chans=chans, weights=cfg.model.weights)
    criterion = RotationLoss()

    def loss(net, batch, train: bool):
        x, _, _ = batch
        rotated, labels = rotation_batch(x)
        return criterion(net(rotated), labels)

    return ContrastiveParts(net=RotationNet(encoder, N_ROTATIONS), loss=loss, views=one_view)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Rotation-prediction pretraining on ``data.flag``; see the module docstring."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="rotation", train_loop_per_worker=train_loop_per_worker,
    config_schema=RotationOptions, defaults=contrastive.DEFAULTS,
    description="RotNet pretext: predict 0/90/180/270-degree rotations; saves the encoder"))
