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

Text removal (sec. 3.1, stage 1) runs first when the DCE was trained after it: ``dce.pt``
records the detector, and ``text_removal`` overrides it (``none`` to skip). Its results are
cached per image content (deterministic), so an epoch after the first does not detect again.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Literal, Sequence

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
    curve = dict(payload["curve"])
    curve["text_removal"] = dict(payload.get("text_removal") or {"detector": "none"})
    return unet.eval().requires_grad_(False), curve


def load_dce(path: str | os.PathLike):
    """``(unet, curve)`` of a ``dce.pt`` file (cached); ``curve`` holds x_shift, y_shift and
    ``text_removal`` (``{"detector", "model_dir"}``, detector ``none`` when the file has none).

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
        text_removal: detector run first (``none``, ``auto``, ``classical``, ``easyocr``);
            None: the one ``dce.pt`` records.
        text_model_dir: EasyOCR's local model directory (None: the recorded one).
        cache_size: text-removed images kept (per process).

    Shape: (C, H, W) -> (C, H, W); H and W divisible by the U-Net's 2**depth.
    """

    def __init__(self, weights: str, input_range: Sequence[float] = (0.0, 1.0),
                 text_removal: Literal["none", "auto", "classical", "easyocr"] | None = None,
                 text_model_dir: str | None = None, cache_size: int = 4096):
        self.weights = str(weights)
        self.input_range = as_range(input_range, "input_range")
        _, curve = load_dce(self.weights)  # fail at build time, with the path
        recorded = curve["text_removal"]
        self.text_removal = text_removal or recorded.get("detector") or "none"
        self.text_model_dir = text_model_dir or recorded.get("model_dir")
        if self.text_removal not in ("none", "auto", "classical", "easyocr"):
            raise MedxferInputError(f"text_removal must be none, auto, classical or easyocr, "
                                    f"got {self.text_removal!r}", field="text_removal")
        self.cache_size, self._detector, self._cache = int(cache_size), None, OrderedDict()

    def __getstate__(self):  # DataLoader workers build their own detector and cache
        return {**self.__dict__, "_detector": None, "_cache": OrderedDict()}

    def _remove_text(self, x01: Tensor) -> Tensor:
        """Stage 1 on a [0, 1] image, cached by content."""
        from medxfer.data.text_removal import get_detector
        from medxfer.methods.dce import remove_text_tensor

        key = hashlib.sha1(x01.numpy().tobytes()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._detector is None:
            self._detector = get_detector(self.text_removal, self.text_model_dir)
        out = remove_text_tensor(x01, self._detector)
        self._cache[key] = out
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    @torch.no_grad()
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        unet, curve = load_dce(self.weights)
        lo, hi = self.input_range
        x01 = (x.float().cpu() - lo) / (hi - lo)
        if self.text_removal != "none":
            x01 = self._remove_text(x01.contiguous())
        xn = x01[None] * 2 - 1
        y = le_curve(xn, unet(xn), curve["x_shift"], curve["y_shift"])
        return ((y + 1) / 2 * (hi - lo) + lo)[0].to(x.dtype)
