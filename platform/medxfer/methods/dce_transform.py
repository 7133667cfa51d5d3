"""The trained DCE as a transform: ``{name: dce, weights: PATH}`` in any pipeline spec.

It runs a model (the shallow U-Net) and a loss-layer formula (the LE-curve), so it lives in the
methods layer, above both, and registers itself into the data layer's transform registry when
:mod:`medxfer.methods` is imported (Ray workers import that package before building a
pipeline).

Seed ``000_3dd3de5c534b555f.txt`` sec. 3.1: "DCE can function as a free and lightweight lung
segmentation tool and can be integrated into any standard medical image processing pipeline".
The ``dce`` method's final checkpoint holds ``dce.pt`` (U-Net hyperparameters, LE-curve shifts,
weights); this transform loads it from a local file (never a download), maps the image from
``input_range`` to [-1, 1], predicts the alpha map with the U-Net (eval mode, no gradient, on
the CPU), applies the LE-curve and maps the result back to ``input_range``. Deterministic: the
same image gives the same output. Models are cached per (path, modification time), so every
dataset item and every DataLoader worker reuses one U-Net.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from medxfer.data.transforms import Transform, register_transform, as_range
from medxfer.errors import MedxferInputError
from medxfer.losses import le_curve
from medxfer.methods.dce import FORMAT
from medxfer.models import ShallowUNet


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float):
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise MedxferInputError(f"cannot read DCE weights: {exc}", path=path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MedxferInputError("not a DCE weight file (expected the dce.pt of a `dce` run)",
                                path=path)
    unet = ShallowUNet(**payload["unet"])
    unet.load_state_dict(payload["state_dict"])
    return unet.eval().requires_grad_(False), dict(payload["curve"])


def load_dce(path: str | os.PathLike):
    """``(unet, curve)`` of a ``dce.pt`` file (cached); ``curve`` holds x_shift and y_shift.

    Raises:
        MedxferInputError: missing or unreadable file (the message says how to make one).
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise MedxferInputError("DCE weights not found; train them with `medxfer train` and "
                                "method: dce (the final checkpoint's dce.pt)", path=str(p))
    return _load(str(p), p.stat().st_mtime)


@register_transform("dce", random=False,
                    reference="seed 000_3dd3de5c534b555f.txt sec. 3.1")
class DCEEnhance(Transform):
    """Lung enhancement by a trained DCE U-Net (deterministic).

    Args:
        weights: local path of a ``dce.pt``.
        input_range: pixel range of the incoming image (default [0, 1], the loaders').

    Shape: (C, H, W) -> (C, H, W); H and W divisible by the U-Net's 2**depth.
    """

    def __init__(self, weights: str, input_range: Sequence[float] = (0.0, 1.0)):
        self.weights = str(weights)
        self.input_range = as_range(input_range, "input_range")
        load_dce(self.weights)  # fail at build time, with the path

    @torch.no_grad()
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        unet, curve = load_dce(self.weights)
        lo, hi = self.input_range
        xn = (x.float()[None] - lo) / (hi - lo) * 2 - 1
        y = le_curve(xn, unet(xn), curve["x_shift"], curve["y_shift"])
        return ((y + 1) / 2 * (hi - lo) + lo)[0].to(x.dtype)
