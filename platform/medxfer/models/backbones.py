"""Backbones by name (timm, torchvision, or local ones), weights only from local files.

``create_backbone(name, in_chans=..., weights=PATH)`` returns an ``nn.Module`` mapping
(B, in_chans, H, W) to a flat embedding (B, embed_dim) for any H, W (global pooling), with
the attribute ``embed_dim``. Names:

* ``tiny_cnn`` (and other names in :func:`list_backbones`): small local CNNs for tests;
* ``torchvision:<name>``, e.g. ``torchvision:resnet18``: a torchvision architecture built with
  ``weights=None``, first conv adapted to ``in_chans``, classifier removed;
* anything else: ``timm.create_model(name, pretrained=False, in_chans=..., num_classes=0)``.

Nothing is ever downloaded: weights come from ``weights`` (a local file written by
``torch.save``), loaded with ``weights_only=True`` and strictly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from medxfer.errors import MedxferInputError
from medxfer.registry import Registry

TORCHVISION_PREFIX = "torchvision:"


class TinyCNN(nn.Module):
    """Three conv blocks and global average pooling; milliseconds on 28x28 / 32x32 inputs.

    Args:
        in_chans: Input channels.
        width: Channels of the first block (doubled twice); ``embed_dim = 4 * width``.
    """

    def __init__(self, in_chans: int = 3, width: int = 32):
        super().__init__()
        c = [width, 2 * width, 4 * width]
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(c[0]), nn.ReLU(inplace=True),
            nn.Conv2d(c[0], c[1], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c[1]), nn.ReLU(inplace=True),
            nn.Conv2d(c[1], c[2], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c[2]), nn.ReLU(inplace=True),
        )
        self.embed_dim = c[2]

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, embed_dim)."""
        return self.features(x).mean(dim=(2, 3))


@dataclass(frozen=True)
class BackboneInfo:
    """A local backbone (timm and ``torchvision:`` names need no registration).

    Attributes:
        name: the ``model.backbone`` name.
        factory: ``factory(in_chans) -> nn.Module`` mapping (B, in_chans, H, W) to
            (B, embed_dim), with the attribute ``embed_dim``.
        embed_dim: the embedding size.
        description: one line for listings.
        min_size: the smallest input side (pixels) the architecture's downsampling accepts.
    """

    name: str
    factory: Callable[[int], nn.Module]
    embed_dim: int
    description: str = ""
    min_size: int = 1


_REGISTRY: Registry[BackboneInfo] = Registry(
    "local backbone", hint=f"(or a timm name, or '{TORCHVISION_PREFIX}<name>')")


def register_backbone(info: BackboneInfo) -> BackboneInfo:
    """Add a local backbone; a duplicate name raises ValueError."""
    return _REGISTRY.add(info.name, info)


def _tiny_vit(in_chans: int) -> nn.Module:
    from medxfer.models.mae import tiny_vit

    return tiny_vit(in_chans)


def _xrv_densenet(in_chans: int) -> nn.Module:
    from medxfer.models.xrv import XRVDenseNet

    return XRVDenseNet(in_chans)


def list_backbones() -> list[str]:
    """The local backbone names, sorted (timm and ``torchvision:`` names are accepted too)."""
    return _REGISTRY.names()


def backbone_info(name: str) -> BackboneInfo:
    """The record of a local backbone; ValueError listing the valid names if unknown."""
    return _REGISTRY.record(name)


def check_backbone(name: str) -> None:
    """Raise ValueError unless :func:`create_backbone` knows ``name``; nothing is built.

    Local names need no import; ``torchvision:<name>`` is looked up in torchvision's model list
    and any other name in timm's (imported only then).
    """
    if name in _REGISTRY:
        return
    if name.startswith(TORCHVISION_PREFIX):
        import torchvision

        valid = torchvision.models.list_models(module=torchvision.models)
        if name[len(TORCHVISION_PREFIX):] not in valid:
            raise ValueError(f"unknown torchvision classification model {name!r}; valid: "
                             f"{TORCHVISION_PREFIX}<one of {', '.join(valid)}>")
        return
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown backbone {name!r}: not a local backbone "
                         f"({', '.join(list_backbones())}), not a timm model, and no "
                         f"'{TORCHVISION_PREFIX}' prefix")


register_backbone(BackboneInfo("tiny_cnn", lambda in_chans: TinyCNN(in_chans, width=32), 128,
                               "three conv blocks, global average pooling (tests, the demo)"))
register_backbone(BackboneInfo("vit_tiny_p4", lambda in_chans: _tiny_vit(in_chans), 64,
                               "a tiny ViT (patch 4): MAE's encoder at 28-32 px"))
register_backbone(BackboneInfo("xrv_densenet121", lambda in_chans: _xrv_densenet(in_chans), 1024,
                               "TorchXRayVision DenseNet-121 (architecture; local weights only)",
                               min_size=32))


class _WithClassifier(nn.Module):
    """Backbone + linear classifier, for ``num_classes > 0``."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.embed_dim = backbone.embed_dim
        self.head = nn.Linear(backbone.embed_dim, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def _torchvision_backbone(arch: str, in_chans: int) -> tuple[nn.Module, list[str]]:
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown torchvision classification model {arch!r}; valid: "
                         f"{', '.join(torchvision.models.list_models(module=torchvision.models))}.")
    kwargs = ({"aux_logits": False, "init_weights": True}
              if arch in ("googlenet", "inception_v3") else {})
    model = torchvision.models.get_model(arch, weights=None, **kwargs)
    if in_chans != 3:
        parent, attr, conv = _first_conv(model)
        new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
        setattr(parent, attr, new)
    # Remove the classifier: the last Linear becomes Identity, its input is the embedding.
    name, linear = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Identity())
    model.embed_dim = linear.in_features
    return model, [f"{name}.weight", f"{name}.bias"]


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            return parent, name.rpartition(".")[2], m
    raise ValueError("model has no Conv2d to adapt to in_chans.")


def _timm_backbone(name: str, in_chans: int) -> tuple[nn.Module, list[str]]:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown backbone {name!r}: not a local backbone "
                         f"({', '.join(list_backbones())}), not a timm model, and no "
                         f"'{TORCHVISION_PREFIX}' prefix.")
    model = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0)
    # MobileNetV3 / LCNet put a 1x1 conv head after pooling: with num_classes=0 their output is
    # head_hidden_size wide (1024 for mobilenetv3_small_050), not num_features (288).
    model.embed_dim = getattr(model, "head_hidden_size", None) or model.num_features
    classifier = model.pretrained_cfg.get("classifier") or ""
    heads = classifier if isinstance(classifier, (list, tuple)) else [classifier]
    return model, [f"{h}.{p}" for h in heads if h for p in ("weight", "bias")]


def create_backbone(name: str, *, in_chans: int = 3, weights: str | os.PathLike | None = None,
                    num_classes: int = 0) -> nn.Module:
    """Build a backbone by name; see the module docstring for the accepted names.

    Args:
        name: ``tiny_cnn``, a timm model name, or ``torchvision:<name>``.
        in_chans: Input channels (1 for grayscale, 3 for RGB).
        weights: Path of a local weight file (state dict, or a dict with ``state_dict`` or
            ``model``); None for random initialisation. Loaded strictly; a source
            classifier's keys are ignored, and a 3-channel first conv is summed into 1
            channel when ``in_chans=1`` (timm's adaptation).
        num_classes: 0 returns the embedding; > 0 appends a linear classifier (``.head``),
            ``forward`` then returns logits and ``forward_features`` the embedding. A file
            saved from such a model (keys ``backbone.*``, ``head.*``) loads into both forms;
            with ``num_classes=0`` its head is dropped, and with another class count (a new
            task) the head starts fresh. A torchvision/timm file that holds
            its own classifier (e.g. ``fc.*`` of a 1000-way ImageNet ResNet) fills ``.head``
            when ``num_classes`` matches it (the source logits LEEP needs); with another
            ``num_classes`` (fine-tuning on a new task), or a file without a classifier,
            ``.head`` is freshly initialised.

    Returns:
        The module, with ``embed_dim`` (the embedding size).

    Raises:
        MedxferInputError: Missing or unreadable weight file, or keys/shapes that do not match.
        ValueError: Unknown name or bad ``in_chans``.
    """
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}.")
    if name in _REGISTRY:
        model, ignored = _REGISTRY[name].factory(in_chans), []
    elif name.startswith(TORCHVISION_PREFIX):
        model, ignored = _torchvision_backbone(name[len(TORCHVISION_PREFIX):], in_chans)
    else:
        model, ignored = _timm_backbone(name, in_chans)
    if weights is None:
        return _WithClassifier(model, num_classes) if num_classes > 0 else model
    path = Path(weights)
    state = _read_state_dict(path)
    if any(k.startswith("backbone.") for k in state):  # saved with a classifier (num_classes > 0)
        head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
        _load_state(model, {k[len("backbone."):]: v for k, v in state.items()
                            if k.startswith("backbone.")}, path, ())
        if num_classes <= 0:
            return model
        model = _WithClassifier(model, num_classes)
        # The file's head is loaded for the same task (same class count); for a new task
        # (transfer) it is left out and the head starts fresh.
        if head and head.get("weight") is not None and head["weight"].shape[0] == num_classes:
            _load_state(model.head, head, path, ())
        return model
    _load_state(model, state, path, ignored)
    if num_classes <= 0:
        return model
    wrapped = _WithClassifier(model, num_classes)
    if (len(ignored) == 2 and all(k in state for k in ignored)  # the file's own classifier,
            and state[ignored[0]].shape == wrapped.head.weight.shape):  # for the same task
        _load_state(wrapped.head, {"weight": state[ignored[0]], "bias": state[ignored[1]]},
                    path, ())
    return wrapped


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise MedxferInputError(
            "weight file not found; weights are never downloaded: save a state dict there "
            "with torch.save(model.state_dict(), path) or point model.weights to an existing "
            "file", path=str(path), field="weights")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise MedxferInputError(f"cannot read weights ({type(exc).__name__}: {exc}); expected a "
                                f"file written by torch.save(state_dict)", path=str(path),
                                field="weights") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise MedxferInputError("expected a state dict (name -> tensor), or a dict holding one "
                                "under 'state_dict' or 'model'", path=str(path), field="weights")
    prefix = "module."  # DistributedDataParallel checkpoints
    if obj and all(k.startswith(prefix) for k in obj):
        obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


def load_weights(model: nn.Module, path: str | os.PathLike,
                 ignore_keys: list[str] | tuple[str, ...] = ()) -> None:
    """Load a local weight file into ``model`` strictly.

    Args:
        model: Target module.
        path: Local file (see :func:`create_backbone`).
        ignore_keys: Keys in the file to skip (a removed classifier).

    Raises:
        MedxferInputError: Missing file, unreadable file, missing/unexpected keys or shape
            mismatches; the message lists the first offending keys.
    """
    path = Path(path)
    _load_state(model, _read_state_dict(path), path, ignore_keys)


def _load_state(model: nn.Module, state: dict[str, Tensor], path: Path,
                ignore_keys: list[str] | tuple[str, ...]) -> None:
    state = {k: v for k, v in state.items() if k not in set(ignore_keys)}
    own = model.state_dict()
    for key, value in list(state.items()):  # 3-channel conv -> in_chans (sum / repeat)
        if (key in own and value.ndim == 4 and own[key].ndim == 4
                and value.shape[1] != own[key].shape[1]
                and value.shape[0] == own[key].shape[0] and value.shape[2:] == own[key].shape[2:]):
            from timm.models import adapt_input_conv
            state[key] = adapt_input_conv(own[key].shape[1], value)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches", shapes)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise MedxferInputError("weights do not match the architecture; " + "; ".join(parts),
                                path=str(path), field="weights")
    model.load_state_dict(state, strict=True)
