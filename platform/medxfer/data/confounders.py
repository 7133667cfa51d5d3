"""Confounders for shortcut studies: image transforms, a class-conditional injector, o.o.d. sets.

Thesis (seed ``004_43f54b618356cecf.txt``) ch. 4 sec. 4.2 and ch. 5 sec. 5.1.2. A confounder is
put into one class (the positives) of the training data with probability ``p_art`` in
{0, 0.1, 0.2, 0.5, 0.8, 1}; the i.i.d. test set is confounded the same way, the o.o.d. test set
reversed: the confounder is in every image of the *other* classes and in none of the chosen
class, so a model that learned the shortcut loses AUC there.

Confounders (:data:`CONFOUNDERS`; MICCAT category in brackets):

* ``tag`` [external]: a text tag, placed away from the edges (the thesis starts it at 200 px of
  1024, i.e. 0.2 of the side) so augmentation keeps it (sec. 4.2.2).
* ``low_pass`` [imaging]: "denoising" by an ideal low-pass filter, eq. 4.1, ``H = 1`` for
  frequencies within ``d0`` of the origin of the centred DFT grid, else 0 (thesis: ``D0 = 500``
  px on 1024-px films; our default 8 suits 28-px images).
* ``poisson_noise`` [imaging]: photon noise, eq. 4.2, ``P(p_r)`` with ``p_r = N0 exp(-p_a)``,
  applied in the image domain (pixel value = attenuation ``p_a``, as the thesis did for its CT
  variant), then mapped back ``p_a' = -log(counts / N0)``. Thesis ``N0 = 2e7`` is invisible on
  8-bit 28-px images, so our default is ``1e4`` (noise std ~0.01-0.016).
* ``nlm_denoise`` [imaging]: non-local-means denoising (ch. 5 sec. 5.1.2, its ref. [116]) with
  scikit-image's ``denoise_nl_means``, ``h = h_factor * sigma`` (sigma estimated per image with
  Immerkaer's method, which needs no wavelet package).
* ``attribute`` [demographic]: a patient attribute (e.g. sex, ``medxfer data synth`` writes it)
  correlated with the label by *sampling* (sec. 4.2.2, "Patient gender is sampled to correlate
  'Female' with the label"): the attribute value plays the artifact, present in a share
  ``p_art`` of the chosen class and absent from the other classes (absent from the chosen class
  and present in all others in the o.o.d. set). This mirror of the image confounders is our
  reading; the thesis does not spell the negative class out.

Departure: ``p_art`` fixes the *share* (``round(p_art * n)`` images of the class, drawn at
random) rather than flipping a coin per image, so small synthetic sets get the intended dose.
Image transforms clip results to [0, 1] (ringing of the ideal filter, noise at the extremes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from medxfer.data.transforms import Transform, register_transform
from medxfer.errors import MedxferInputError
from medxfer.registry import Registry

# ------------------------------------------------------------------------ pure image functions


def add_tag(x: Tensor, *, text: str = "L", position: tuple[float, float] = (0.2, 0.2),
            height: float = 0.2, value: float = 1.0) -> Tensor:
    """Burn ``text`` into ``x (C, H, W)`` at ``position`` (left, top as fractions of the side).

    ``height`` is the text height as a fraction of the image side; pixels under the text become
    ``value`` (anti-aliased from 64 px up). Deterministic.
    """
    import cv2

    _, h, w = x.shape
    scale = max(height * h / 22.0, 0.1)  # FONT_HERSHEY_SIMPLEX: ~22 px per unit scale
    thickness = max(1, round(scale * 1.5))
    mask = np.zeros((h, w), np.uint8)
    (_, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = (int(round(position[0] * w)), int(round(position[1] * h)) + th)
    cv2.putText(mask, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    if h < 64:  # small images: anti-aliasing smears the strokes into a faint blur; keep them crisp
        mask = np.where(mask >= 64, 255, 0).astype(np.uint8)
    m = torch.from_numpy(mask.astype(np.float32) / 255.0).to(x.dtype)
    return x * (1 - m) + m * value


def low_pass(x: Tensor, *, d0: float) -> Tensor:
    """Ideal low-pass filter (thesis eq. 4.1) of ``x (C, H, W)``; cutoff ``d0`` in DFT pixels."""
    _, h, w = x.shape
    v = torch.fft.fftfreq(h, dtype=torch.float64) * h
    u = torch.fft.fftfreq(w, dtype=torch.float64) * w
    keep = (torch.sqrt(v[:, None] ** 2 + u[None, :] ** 2) <= d0).to(torch.complex128)
    y = torch.fft.ifft2(torch.fft.fft2(x.to(torch.float64)) * keep).real
    return y.clamp(0, 1).to(x.dtype)


def poisson_noise(x: Tensor, *, n0: float, generator: torch.Generator | None = None) -> Tensor:
    """Photon noise (thesis eq. 4.2) on ``x (C, H, W)`` read as attenuation ``p_a`` in [0, 1]."""
    rate = n0 * torch.exp(-x.to(torch.float64).clamp(0, 1))
    counts = torch.poisson(rate, generator=generator).clamp_min(1.0)
    return (-torch.log(counts / n0)).clamp(0, 1).to(x.dtype)


def noise_sigma(img: np.ndarray) -> float:
    """Gaussian noise std of a 2-D image, Immerkaer's fast estimate (CVIU 64(2), 1996).

    ``sqrt(pi / 2) / (6 (W - 2)(H - 2)) * sum |img * N|`` with the Laplacian-difference mask
    ``N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``, which cancels smooth image structure.
    """
    from scipy.signal import convolve2d

    n = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    h, w = img.shape
    return float(np.sqrt(np.pi / 2) / (6 * (w - 2) * (h - 2))
                 * np.abs(convolve2d(img, n, mode="valid")).sum())


def nlm_denoise(x: Tensor, *, h_factor: float = 0.8, patch_size: int = 3,
                patch_distance: int = 4) -> Tensor:
    """Non-local-means denoising of ``x (C, H, W)`` (scikit-image; sigma by :func:`noise_sigma`,
    averaged over channels)."""
    from skimage.restoration import denoise_nl_means

    img = x.detach().cpu().numpy().astype(np.float64).transpose(1, 2, 0)
    sigma = float(np.mean([noise_sigma(img[..., c]) for c in range(img.shape[-1])]))
    out = denoise_nl_means(img, h=h_factor * max(sigma, 1e-3), sigma=sigma,
                           patch_size=patch_size, patch_distance=patch_distance,
                           fast_mode=True, channel_axis=-1)
    out = out.reshape(img.shape)  # scikit-image drops a single channel axis
    return torch.from_numpy(np.clip(out, 0, 1).transpose(2, 0, 1).copy()).to(x.dtype)


# ------------------------------------------------------------------------ registered transforms


@register_transform("tag", random=False,
                    reference="004_43f54b618356cecf.txt ch. 4 (tag confounder)")
class Tag(Transform):
    """Confounder ``tag``: :func:`add_tag` as a pipeline step."""

    def __init__(self, text: str = "L", position: tuple[float, float] = (0.2, 0.2),
                 height: float = 0.2, value: float = 1.0):
        if not (0 <= position[0] < 1 and 0 <= position[1] < 1) or not 0 < height < 1:
            raise ValueError(f"position must be in [0, 1)^2 and height in (0, 1), got "
                             f"{position} and {height}")
        self.text, self.position, self.height, self.value = str(text), tuple(position), \
            float(height), float(value)

    def __call__(self, x, generator=None):
        return add_tag(x, text=self.text, position=self.position, height=self.height,
                       value=self.value)


@register_transform("low_pass", random=False,
                    reference="004_43f54b618356cecf.txt ch. 4, eq. 4.1")
class LowPass(Transform):
    """Confounder ``low_pass``: :func:`low_pass` (thesis eq. 4.1) as a pipeline step."""

    def __init__(self, d0: float = 8.0):
        if d0 <= 0:
            raise ValueError(f"d0 must be > 0, got {d0}")
        self.d0 = float(d0)

    def __call__(self, x, generator=None):
        return low_pass(x, d0=self.d0)


@register_transform("poisson_noise", random=True,
                    reference="004_43f54b618356cecf.txt ch. 4, eq. 4.2")
class PoissonNoise(Transform):
    """Confounder ``poisson_noise``: :func:`poisson_noise` (thesis eq. 4.2) as a pipeline step."""

    def __init__(self, n0: float = 1e4):
        if n0 <= 0:
            raise ValueError(f"n0 must be > 0, got {n0}")
        self.n0 = float(n0)

    def __call__(self, x, generator=None):
        return poisson_noise(x, n0=self.n0, generator=generator)


@register_transform("nlm_denoise", random=False,
                    reference="004_43f54b618356cecf.txt ch. 5 (non-local-means denoising)")
class NLMDenoise(Transform):
    """Confounder ``nlm_denoise``: :func:`nlm_denoise` as a pipeline step."""

    def __init__(self, h_factor: float = 0.8, patch_size: int = 3, patch_distance: int = 4):
        if h_factor <= 0 or patch_size < 1 or patch_distance < 1:
            raise ValueError("need h_factor > 0, patch_size >= 1 and patch_distance >= 1")
        self.h_factor, self.patch_size, self.patch_distance = float(h_factor), int(patch_size), \
            int(patch_distance)

    def __call__(self, x, generator=None):
        return nlm_denoise(x, h_factor=self.h_factor, patch_size=self.patch_size,
                           patch_distance=self.patch_distance)


# ------------------------------------------------------------------------ the confounder registry


@dataclass(frozen=True)
class ConfounderInfo:
    """A confounder of the shortcut studies.

    Attributes:
        name: Registry name.
        kind: ``"image"`` (a transform put into the images) or ``"attribute"`` (sampling on a
            patient attribute).
        transform: The transforms-registry name of an image confounder (None for attributes).
        category: MICCAT category (thesis Fig. 4.1): external, imaging or demographic.
        reference: Seed section.
    """

    name: str
    kind: Literal["image", "attribute"]
    transform: str | None
    category: str
    reference: str = field(default="")


_REGISTRY: Registry[ConfounderInfo] = Registry("confounder")


def _register(info: ConfounderInfo) -> None:
    _REGISTRY.add(info.name, info)


_register(ConfounderInfo("tag", "image", "tag", "external", "seed 004 sec. 4.2.2"))
_register(ConfounderInfo("low_pass", "image", "low_pass", "imaging", "seed 004 eq. 4.1"))
_register(ConfounderInfo("poisson_noise", "image", "poisson_noise", "imaging",
                         "seed 004 eq. 4.2"))
_register(ConfounderInfo("nlm_denoise", "image", "nlm_denoise", "imaging",
                         "seed 004 sec. 5.1.2"))
_register(ConfounderInfo("attribute", "attribute", None, "demographic", "seed 004 sec. 4.2.2"))


def list_confounders() -> list[str]:
    """Registry names, sorted."""
    return _REGISTRY.names()


def confounder_info(name: str) -> ConfounderInfo:
    """The record of ``name``; MedxferInputError listing the valid names if unknown."""
    try:
        return _REGISTRY.record(name)
    except ValueError as exc:
        raise MedxferInputError(str(exc), field="confounder") from None


def confounder_transform(name: str, **params) -> Transform:
    """The transform of an image confounder, built with ``params``."""
    from medxfer.data.transforms import build_transform

    info = confounder_info(name)
    if info.transform is None:
        raise MedxferInputError(f"confounder {name!r} is a sampling on a patient attribute, not "
                                "an image transform", field="confounder")
    return build_transform([{"name": info.transform, **params}]).transforms[0]
