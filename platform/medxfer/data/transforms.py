"""Augmentations per paper, composable from YAML.

Every transform maps a float tensor ``(C, H, W)`` to a float tensor and draws its randomness from
an optional ``torch.Generator`` (``t(x, generator=g)``); without one it uses torch's global RNG,
which DataLoader seeds per worker. A pipeline is a list of ``{name: ..., <params>}`` dicts::

    - {name: random_resized_crop, size: 224, scale: [0.6, 1.0]}
    - {name: random_rotation, degrees: 15}
    - {name: xrv_scale}

:func:`build_transform` turns such a list (or YAML text, or a YAML file) into a :class:`Compose`;
an unknown name is a :class:`~medxfer.errors.MedxferInputError` listing the valid ones. Names
are registered once each (:func:`register_transform`, one frozen :class:`TransformInfo` per
name); transforms that run a trained model (``dce``) register from the methods layer.

Papers:

* seed ``000_3dd3de5c534b555f.txt`` (SCC), App. B: random crop with ratio 0.6-1.0, resize to 224,
  rotation up to 15 degrees, pixels scaled to [-1024, 1024] for TorchXRayVision models
  (preset ``"scc"``).
* seed ``001_a9715376ac5cbd5d.txt`` (100M medical images), sec. III-C: rescale by s in
  [0.1, 0.7], energy-band normalisation with a sampled reference energy (eq. 8), gamma in
  [1.8, 2.6], linear a*I+b with a in [0.9, 1.1] and b within 20% of the intensity range, random
  crop (preset ``"medical_ssl"``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from medxfer.errors import MedxferInputError
from medxfer.registry import Registry


@dataclass(frozen=True)
class TransformInfo:
    """A registered transform.

    Attributes:
        name: the ``name`` of a pipeline step (and the class's ``registry_name``).
        cls: the :class:`Transform` class; ``cls(**params)`` builds the step.
        random: draws from the generator; False: the same input always gives the same output.
        reference: the seed file and section it follows ("" for plumbing).
    """

    name: str
    cls: type
    random: bool
    reference: str = ""


_REGISTRY: Registry[TransformInfo] = Registry(
    "transform", hint="(model-backed transforms such as 'dce' register on import of "
                      "medxfer.methods)")


def register_transform(name: str, *, random: bool,
                       reference: str = "") -> Callable[[type], type]:
    """Class decorator: make ``name`` usable in pipeline specs; a duplicate name raises
    ValueError."""
    def wrap(cls: type) -> type:
        _REGISTRY.add(name, TransformInfo(name, cls, random, reference))
        cls.registry_name = name
        return cls
    return wrap


def list_transforms() -> list[str]:
    """Names usable in a pipeline spec, sorted."""
    return _REGISTRY.names()


def transform_info(name: str) -> TransformInfo:
    """The record of ``name``; ValueError listing the valid names if unknown.

    Transforms that run a trained model (``dce``) register from the methods layer, on import
    of :mod:`medxfer.methods`.
    """
    return _REGISTRY.record(name)


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def as_range(v: float | Sequence[float], name: str) -> tuple[float, float]:
    """``(lo, hi)`` from a number (``lo == hi``) or a pair; ValueError naming ``name`` if
    ``lo > hi``."""
    lo, hi = (v, v) if isinstance(v, (int, float)) else tuple(v)
    if lo > hi:
        raise ValueError(f"{name}: lower bound {lo} > upper bound {hi}")
    return float(lo), float(hi)


class Transform:
    """Base: ``__call__(x, generator=None)`` on a float tensor ``(C, H, W)``."""

    registry_name = ""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class Compose(Transform):
    """Apply transforms in order, threading one generator through all of them."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, generator=None):
        for t in self.transforms:
            x = t(x, generator=generator) if isinstance(t, Transform) else t(x)
        return x


class TwoViews:
    """SimCLR-style pair: the same random ``transform`` applied twice, independently.

    Seed ``000_3dd3de5c534b555f.txt`` sec. 3.2: each image yields two views ``x_{2k-1}, x_{2k}``.
    """

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, x: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if isinstance(self.transform, Transform):
            return self.transform(x, generator), self.transform(x, generator)
        return self.transform(x), self.transform(x)


@register_transform("to_tensor", random=False)
class ToTensor(Transform):
    """numpy ``(H, W[, C])`` / PIL / uint8 tensor -> float ``(C, H, W)`` in [0, 1]."""

    def __call__(self, x, generator=None):
        if not isinstance(x, Tensor):
            import numpy as np

            arr = np.asarray(x)
            x = torch.from_numpy(arr.copy())
            x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        if x.dtype == torch.uint8:
            return x.float() / 255.0
        return x.float()


@register_transform("resize", random=False)
class Resize(Transform):
    """Resize to ``size x size`` (bilinear, antialiased)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x, generator=None):
        return TF.resize(x, [self.size, self.size], antialias=True)


@register_transform("random_resized_crop", random=True,
                    reference="seed 000_3dd3de5c534b555f.txt App. B")
class RandomResizedCrop(Transform):
    """Crop a random box of ``scale`` of the area and ``ratio`` aspect, resize to ``size``.

    Seed ``000_3dd3de5c534b555f.txt`` App. B: "random cropping with a ratio from 0.6 to 1.0,
    scaling to 224 x 224" (ratio read as area fraction, as torchvision's ``scale``).
    """

    def __init__(self, size: int = 224, scale: Sequence[float] = (0.6, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3)):
        self.size = int(size)
        self.scale, self.ratio = as_range(scale, "scale"), as_range(ratio, "ratio")

    def __call__(self, x, generator=None):
        h, w = x.shape[-2:]
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            area = h * w * _uniform(*self.scale, generator)
            r = math.exp(_uniform(*log_r, generator))
            cw, ch = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (), generator=generator))
                left = int(torch.randint(0, w - cw + 1, (), generator=generator))
                return TF.resized_crop(x, top, left, ch, cw, [self.size, self.size],
                                       antialias=True)
        side = min(h, w)  # fallback: centre square
        return TF.resized_crop(x, (h - side) // 2, (w - side) // 2, side, side,
                               [self.size, self.size], antialias=True)


@register_transform("random_rotation", random=True,
                    reference="seed 000_3dd3de5c534b555f.txt App. B")
class RandomRotation(Transform):
    """Rotate by an angle uniform in ``[-degrees, degrees]`` (seed 000 App. B: up to 15)."""

    def __init__(self, degrees: float = 15.0, fill: float = 0.0):
        self.degrees, self.fill = float(degrees), float(fill)

    def __call__(self, x, generator=None):
        angle = _uniform(-self.degrees, self.degrees, generator)
        return TF.rotate(x, angle, interpolation=TF.InterpolationMode.BILINEAR, fill=self.fill)


@register_transform("random_horizontal_flip", random=True)
class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, x, generator=None):
        return x.flip(-1) if float(torch.rand((), generator=generator)) < self.p else x


@register_transform("xrv_scale", random=False,
                    reference="seed 000_3dd3de5c534b555f.txt App. B")
class XRVScale(Transform):
    """[0, 1] -> [-1024, 1024], the input range TorchXRayVision models expect.

    Seed ``000_3dd3de5c534b555f.txt`` App. B; inputs are clamped to [0, 1] first, so the output
    range is guaranteed.
    """

    def __init__(self, max_value: float = 1024.0):
        self.max_value = float(max_value)

    def __call__(self, x, generator=None):
        return (x.clamp(0, 1) * 2 - 1) * self.max_value


@register_transform("normalize", random=False)
class Normalize(Transform):
    """``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float] = (0.5,), std: Sequence[float] = (0.5,)):
        self.mean, self.std = list(map(float, mean)), list(map(float, std))

    def __call__(self, x, generator=None):
        mean = torch.tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std


@register_transform("repeat_channels", random=False)
class RepeatChannels(Transform):
    """Grey ``(1, H, W)`` -> ``(n, H, W)``; tensors with ``n`` channels pass unchanged."""

    def __init__(self, n: int = 3):
        self.n = int(n)

    def __call__(self, x, generator=None):
        return x.expand(self.n, -1, -1).contiguous() if x.shape[0] == 1 else x


@register_transform("random_rescale", random=True,
                    reference="seed 001_a9715376ac5cbd5d.txt sec. III-C")
class RandomRescale(Transform):
    """Resize to a fraction ``s`` of the input size, ``s`` uniform in ``scale``.

    Seed ``001_a9715376ac5cbd5d.txt`` sec. III-C, "image rescaling" with s in [0.1, 0.7]. The
    paper rescales full-resolution images before a fixed-size crop; follow this with
    ``random_crop`` (which pads when the rescaled image is smaller) and pick ``scale`` so that the
    rescaled side stays near the crop size (e.g. [0.7, 1.3] on 28x28 MedMNIST).
    """

    def __init__(self, scale: Sequence[float] = (0.1, 0.7)):
        self.scale = as_range(scale, "scale")
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def __call__(self, x, generator=None):
        s = _uniform(*self.scale, generator)
        h, w = x.shape[-2:]
        return TF.resize(x, [max(1, round(h * s)), max(1, round(w * s))], antialias=True)


def _gaussian(x: Tensor, sigma: float) -> Tensor:
    k = 2 * math.ceil(3 * sigma) + 1
    k = min(k, 2 * min(x.shape[-2:]) - 1)  # reflect padding needs pad < side
    return TF.gaussian_blur(x, [k, k], [sigma, sigma]) if k >= 3 else x


def energy_bands(x: Tensor, sigmas: Sequence[float]) -> tuple[list[Tensor], Tensor]:
    """Difference-of-Gaussians bands ``I^(1..B)`` and the low-pass residual (sum = ``x``).

    Band ``i`` is ``G_{sigma_{i-1}} x - G_{sigma_i} x`` with ``G_{sigma_0} x = x``.
    """
    levels = [x] + [_gaussian(x, s) for s in sigmas]
    return [levels[i] - levels[i + 1] for i in range(len(sigmas))], levels[-1]


def band_energies(x: Tensor, sigmas: Sequence[float]) -> Tensor:
    """``e_i(I, Omega)``: the standard deviation of each band over the whole image, ``(B,)``."""
    bands, _ = energy_bands(x, sigmas)
    return torch.stack([b.std() for b in bands])


def reference_energies(images: Tensor | Sequence[Tensor],
                       sigmas: Sequence[float]) -> tuple[list[float], list[float]]:
    """Mean and std of the band energies over R reference images (the paper uses R = 1000)."""
    e = torch.stack([band_energies(im, sigmas) for im in images])
    return e.mean(0).tolist(), e.std(0).tolist() if len(e) > 1 else [0.0] * len(sigmas)


@register_transform("energy_band_normalize", random=True,
                    reference="seed 001_a9715376ac5cbd5d.txt sec. III-C, eq. 8")
class EnergyBandNormalize(Transform):
    """Energy-based normalisation with a sampled reference energy.

    Seed ``001_a9715376ac5cbd5d.txt`` sec. III-C, eq. 8 (after Philipsen et al. 2015): the image
    is split into B Gaussian bands ``I^(i)``; ``I_hat = sum_i e_i^ref / e_i(I) * I^(i)``, where
    ``e_i`` is a band's standard deviation over the whole image and ``e_i^ref`` is drawn
    uniformly from ``[mean_i - std_i, mean_i + std_i]`` of the R reference images' energies
    (:func:`reference_energies`). Without ``ref_mean`` the image's own energies are the mean and
    ``rel_std`` times them the spread (a reference-free variant). The low-pass residual is added
    back unscaled (brightness kept) and the result clamped to [0, 1].

    Args:
        sigmas: Gaussian sigmas (pixels) of the band edges, ascending.
        ref_mean, ref_std: per-band reference energies (length B).
        rel_std: relative spread when no reference is given.
    """

    def __init__(self, sigmas: Sequence[float] = (1.0, 2.0, 4.0),
                 ref_mean: Sequence[float] | None = None, ref_std: Sequence[float] | None = None,
                 rel_std: float = 0.2):
        self.sigmas = [float(s) for s in sigmas]
        if ref_mean is not None and len(ref_mean) != len(self.sigmas):
            raise ValueError(f"ref_mean has {len(ref_mean)} values for {len(self.sigmas)} bands")
        self.ref_mean = None if ref_mean is None else [float(v) for v in ref_mean]
        self.ref_std = None if ref_std is None else [float(v) for v in ref_std]
        self.rel_std = float(rel_std)

    def __call__(self, x, generator=None):
        bands, out = energy_bands(x, self.sigmas)
        for i, band in enumerate(bands):
            e = float(band.std())
            mean = self.ref_mean[i] if self.ref_mean is not None else e
            spread = (self.ref_std[i] if self.ref_std is not None and self.ref_mean is not None
                      else self.rel_std * mean)
            e_ref = _uniform(mean - spread, mean + spread, generator)
            out = out + band * (max(e_ref, 0.0) / e if e > 1e-8 else 1.0)
        return out.clamp(0, 1)


@register_transform("random_gamma", random=True,
                    reference="seed 001_a9715376ac5cbd5d.txt sec. III-C")
class RandomGamma(Transform):
    """``x ** gamma``, gamma uniform in ``gamma`` (seed 001 sec. III-C: [1.8, 2.6])."""

    def __init__(self, gamma: Sequence[float] = (1.8, 2.6)):
        self.gamma = as_range(gamma, "gamma")

    def __call__(self, x, generator=None):
        return x.clamp(0, 1) ** _uniform(*self.gamma, generator)


@register_transform("random_linear", random=True,
                    reference="seed 001_a9715376ac5cbd5d.txt sec. III-C")
class RandomLinear(Transform):
    """``a * x + b``, a uniform in ``a``, b uniform in ``+-b * (max(x) - min(x))``.

    Seed ``001_a9715376ac5cbd5d.txt`` sec. III-C: a in [0.9, 1.1], b within 20% of the range.
    ``clamp`` keeps the result in [0, 1].
    """

    def __init__(self, a: Sequence[float] = (0.9, 1.1), b: float = 0.2, clamp: bool = True):
        self.a, self.b, self.clamp = as_range(a, "a"), float(b), bool(clamp)

    def __call__(self, x, generator=None):
        span = float(x.max() - x.min())
        a = _uniform(*self.a, generator)
        b = _uniform(-self.b * span, self.b * span, generator)
        y = a * x + b
        return y.clamp(0, 1) if self.clamp else y


@register_transform("random_crop", random=True,
                    reference="seed 001_a9715376ac5cbd5d.txt sec. III-C")
class RandomCrop(Transform):
    """A ``size x size`` crop at a uniform location, zero-padded first if the image is smaller.

    Seed ``001_a9715376ac5cbd5d.txt`` sec. III-C, "cropping from random image locations".
    """

    def __init__(self, size: int, fill: float = 0.0):
        self.size, self.fill = int(size), float(fill)

    def __call__(self, x, generator=None):
        h, w = x.shape[-2:]
        ph, pw = max(0, self.size - h), max(0, self.size - w)
        if ph or pw:
            x = TF.pad(x, [pw // 2, ph // 2, pw - pw // 2, ph - ph // 2], fill=self.fill)
            h, w = x.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, (), generator=generator))
        left = int(torch.randint(0, w - self.size + 1, (), generator=generator))
        return x[..., top:top + self.size, left:left + self.size]


@register_transform("random_apply", random=True)
class RandomApply(Transform):
    """Apply ``transform`` (a spec dict or list of them) with probability ``p``."""

    def __init__(self, transform: dict | list, p: float = 0.5):
        self.transform, self.p = build_transform(transform), float(p)

    def __call__(self, x, generator=None):
        return self.transform(x, generator) if float(torch.rand((), generator=generator)) < self.p \
            else x


def _load_spec(spec: Any) -> list:
    if isinstance(spec, (str, os.PathLike)):
        import yaml

        text = str(spec)
        if Path(text).suffix in (".yaml", ".yml") and "\n" not in text:
            try:
                text = Path(text).read_text()
            except OSError as exc:
                raise MedxferInputError(f"cannot read transform spec: {exc}", path=text) from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MedxferInputError(f"transform spec is not valid YAML: {exc}") from None
    if isinstance(spec, dict):
        spec = [spec]
    if not isinstance(spec, list):
        raise MedxferInputError(f"transform spec must be a list of {{name: ...}} dicts, got "
                                f"{type(spec).__name__}", field="transforms")
    return spec


def build_transform(spec: list | dict | str | os.PathLike) -> Compose:
    """Build a pipeline from ``[{name: ..., <params>}, ...]``, YAML text, or a ``.yaml`` path.

    Raises:
        MedxferInputError: unknown name (the message lists the valid ones) or bad parameters.
    """
    steps = []
    for i, item in enumerate(_load_spec(spec)):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise MedxferInputError(f"step {i} must be a dict with a 'name', got {item!r}",
                                    field=f"transforms[{i}]")
        params = {k: v for k, v in item.items() if k != "name"}
        name = item["name"]
        try:
            cls = transform_info(name).cls
        except ValueError as exc:
            raise MedxferInputError(str(exc), field=f"transforms[{i}].name") from None
        try:
            steps.append(cls(**params))
        except (TypeError, ValueError) as exc:
            raise MedxferInputError(f"transform {name!r}: {exc}",
                                    field=f"transforms[{i}]") from None
    return Compose(steps)


def preset_spec(name: str, size: int = 224) -> list[dict]:
    """The pipeline of a paper as a spec list (edit it, then :func:`build_transform`)."""
    pipelines = {
        # seed 000 App. B
        "scc": [{"name": "random_resized_crop", "size": size, "scale": [0.6, 1.0]},
                {"name": "random_rotation", "degrees": 15},
                {"name": "xrv_scale"}],
        # seed 001 sec. III-C
        "medical_ssl": [{"name": "random_rescale", "scale": [0.1, 0.7]},
                        {"name": "energy_band_normalize"},
                        {"name": "random_gamma", "gamma": [1.8, 2.6]},
                        {"name": "random_linear", "a": [0.9, 1.1], "b": 0.2},
                        {"name": "random_crop", "size": size}],
        "eval_scc": [{"name": "resize", "size": size}, {"name": "xrv_scale"}],
    }
    if name not in pipelines:
        raise MedxferInputError(f"unknown preset {name!r}; valid: {sorted(pipelines)}",
                                field="preset")
    return pipelines[name]


def preset(name: str, size: int = 224) -> Compose:
    """``"scc"`` (seed 000), ``"medical_ssl"`` (seed 001) or ``"eval_scc"`` as a pipeline."""
    return build_transform(preset_spec(name, size))


# The shortcut-study confounders (tag, low_pass, poisson_noise, nlm_denoise) register likewise.
from medxfer.data import confounders  # noqa: E402,F401  isort: skip
# Multi-crop's rescale_crop, PIRL's jigsaw, the energy-reference transform and the named
# presets (``{name: preset, ...}``) register likewise.
from medxfer.data import multicrop, jigsaw, energy_reference, presets  # noqa: E402,F401,I001  isort: skip
