"""U-Net and DeepLabV3+ (segmentation-models-pytorch) with encoders from our checkpoints.

Seed 003 (``003_4aa9fa56a835f729.txt`` sec. IV, Table I) fine-tunes U-Net and DeepLabV3+ whose
encoder was pretrained by each method (CL-TCI, SimCLR, MoCo, Rotation, PIRL) or is random. The
architectures come from segmentation-models-pytorch (``smp``), always with
``encoder_weights=None``: nothing is downloaded. The encoder is then filled from a local file:

* any of our pretraining checkpoints' ``encoder.pt`` (simclr, cltci, moco, swav, ...), the
  ``model.pt`` of ``finetune`` (keys ``backbone.*``, ``head.*``), a local ImageNet weight
  file (torchvision / timm state dict with its classifier), or None (random);
* the file is first loaded into our own backbone of the same name
  (:func:`medxfer.models.create_backbone`: strict keys, classifier dropped, first conv adapted to
  ``in_chans``), then mapped key by key onto smp's encoder (:func:`encoder_state`).

Backbone names both sides accept (:func:`smp_encoder_name`):

=========================================  ===============================================
our ``model.backbone``                     smp encoder
=========================================  ===============================================
``resnet18/34/50/101/152`` (timm),         ``resnet18`` ... (torchvision layout, same keys)
``torchvision:resnet18`` ...
``xrv_densenet121`` (TorchXRayVision)      ``densenet121`` (torchvision layout)
any other timm model                       ``tu-<name>`` (timm ``features_only``)
=========================================  ===============================================

Keys of our backbone that the encoder has no place for (e.g. the final ``conv_head``/``bn2`` of
an EfficientNet, which ``features_only`` drops) are left out and listed; an encoder key that the
checkpoint does not fill, or a shape mismatch, is a :class:`~medxfer.errors.MedxferInputError`
naming the file.

Inputs of any size work: :class:`SegmentationNet` pads H and W up to a multiple of 32 (U-Net's
five downsamplings; DeepLabV3+ needs 16) and crops the logits back.

[0] U-Net, 2015, https://arxiv.org/abs/1505.04597  [1] DeepLabV3+, 2018, https://arxiv.org/abs/1802.02611
"""

from __future__ import annotations

import os
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.errors import MedxferInputError

#: Our architecture names -> smp class names.
ARCHITECTURES = {"unet": "Unet", "deeplabv3plus": "DeepLabV3Plus"}
#: Backbones whose state dict has smp's torchvision encoder layout (same keys).
_TORCHVISION_LAYOUT = {f"resnet{d}": f"resnet{d}" for d in (18, 34, 50, 101, 152)}
_TORCHVISION_LAYOUT["xrv_densenet121"] = "densenet121"
#: Side multiple the padding makes (U-Net: 2**5; DeepLabV3+: 16).
PAD_MULTIPLE = 32


def smp_encoder_name(backbone: str) -> str:
    """smp's encoder name for our backbone name (see the module table).

    Raises:
        MedxferInputError: a backbone smp cannot host (``tiny_cnn``, ViTs, torchvision non-ResNets).
    """
    import timm

    name = backbone.removeprefix("torchvision:")
    if name in _TORCHVISION_LAYOUT:
        return _TORCHVISION_LAYOUT[name]
    if backbone.startswith("torchvision:") or not timm.is_model(name) or \
            name.startswith(("vit_", "deit_", "eva", "beit")):
        raise MedxferInputError(
            f"backbone {backbone!r} cannot be a segmentation encoder; use resnet18/34/50/101/152 "
            "(timm or torchvision:), xrv_densenet121, or a convolutional timm model "
            "(smp's tu- encoders)", field="model.backbone")
    return f"tu-{name}"


def _map_key(key: str, encoder_keys: set[str], timm_universal: bool) -> str | None:
    """Where our backbone's ``key`` lives in smp's encoder (None: nowhere)."""
    if not timm_universal:
        return key if key in encoder_keys else None
    cand = f"model.{key}"
    if cand in encoder_keys:
        return cand
    head, _, rest = key.partition(".")  # features_only flattens one level: stages.0 -> stages_0
    idx, _, tail = rest.partition(".")
    flat = f"model.{head}_{idx}.{tail}"
    return flat if tail and flat in encoder_keys else None


def encoder_state(backbone_state: dict[str, Tensor], encoder: nn.Module, *,
                  timm_universal: bool, source: str) -> tuple[dict[str, Tensor], list[str]]:
    """Map our backbone's state dict onto smp's ``encoder``.

    Args:
        backbone_state: ``create_backbone(name, weights=...).state_dict()``.
        encoder: The smp encoder (``model.encoder``).
        timm_universal: smp's ``tu-`` encoder (keys under ``model.``).
        source: The weight file, for error messages.

    Returns:
        The encoder's full state dict, and our keys left out (no place in the encoder).

    Raises:
        MedxferInputError: encoder keys not filled, or shapes that differ.
    """
    own = encoder.state_dict()
    mapped, dropped = {}, []
    for key, value in backbone_state.items():
        target = _map_key(key, set(own), timm_universal)
        if target is None:
            dropped.append(key)
        else:
            mapped[target] = value
    missing = [k for k in own if k not in mapped]
    shapes = [f"{k}: file {tuple(v.shape)} vs encoder {tuple(own[k].shape)}"
              for k, v in mapped.items() if v.shape != own[k].shape]
    if missing or shapes:
        parts = [f"{label}: {', '.join(keys[:5])}" + (f" (+{len(keys) - 5} more)" if len(keys) > 5
                                                       else "")
                 for label, keys in (("encoder keys not in the checkpoint", missing),
                                     ("shape mismatches", shapes)) if keys]
        raise MedxferInputError("checkpoint does not fit the segmentation encoder; "
                                + "; ".join(parts), path=source, field="model.weights")
    return mapped, dropped


class SegmentationNet(nn.Module):
    """An smp model that takes any H, W: padded to :data:`PAD_MULTIPLE`, logits cropped back.

    Shape: (B, in_chans, H, W) -> logits (B, n_classes, H, W).

    Attributes:
        model: The smp model (``model.encoder`` is what pretraining initialises).
        arch, backbone, n_classes: As built.
        dropped_keys: Keys of the weight file the encoder had no place for.
    """

    def __init__(self, model: nn.Module, arch: str, backbone: str, n_classes: int):
        super().__init__()
        self.model, self.arch, self.backbone, self.n_classes = model, arch, backbone, n_classes
        self.dropped_keys: list[str] = []

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        out = self.model(x)
        return out[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]


def create_segmentation_model(arch: str = "unet", backbone: str = "resnet18", *,
                              in_chans: int = 1, n_classes: int = 2,
                              weights: str | os.PathLike | None = None) -> SegmentationNet:
    """U-Net or DeepLabV3+ with its encoder initialised from ``weights`` (or random).

    Args:
        arch: ``unet`` or ``deeplabv3plus``.
        backbone: Our backbone name (module table).
        in_chans: Input channels.
        n_classes: Output classes, background included (seed 003: 3).
        weights: A local checkpoint file (module docstring); None: random encoder.

    Returns:
        :class:`SegmentationNet`.

    Raises:
        MedxferInputError: unknown arch, unsupported backbone, missing or unfit weight file.
    """
    import segmentation_models_pytorch as smp

    if arch not in ARCHITECTURES:
        raise MedxferInputError(f"unknown segmentation arch {arch!r}; valid: "
                                f"{', '.join(sorted(ARCHITECTURES))}", field="arch")
    if n_classes < 2:
        raise MedxferInputError(f"n_classes must be >= 2 (background + foreground), got "
                                f"{n_classes}", field="n_classes")
    enc = smp_encoder_name(backbone)
    model = getattr(smp, ARCHITECTURES[arch])(encoder_name=enc, encoder_weights=None,
                                              in_channels=in_chans, classes=n_classes)
    net = SegmentationNet(model, arch, backbone, n_classes)
    if weights is not None:
        net.dropped_keys = load_encoder_weights(net, weights, in_chans=in_chans)
    return net


def load_encoder_weights(net: SegmentationNet, weights: str | os.PathLike, *,
                         in_chans: int = 1) -> list[str]:
    """Fill ``net``'s encoder from a local checkpoint of ``net.backbone``; return dropped keys."""
    from medxfer.models.backbones import create_backbone

    backbone = create_backbone(net.backbone, in_chans=in_chans, weights=weights)
    state, dropped = encoder_state(backbone.state_dict(), net.encoder,
                                   timm_universal=smp_encoder_name(net.backbone).startswith("tu-"),
                                   source=str(Path(weights)))
    net.encoder.load_state_dict(state, strict=True)
    return dropped


__all__ = ["ARCHITECTURES", "SegmentationNet", "create_segmentation_model", "encoder_state",
           "load_encoder_weights", "smp_encoder_name"]
