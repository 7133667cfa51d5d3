"""Multi-crop views (SwAV) and the seed-001 rescale-then-crop step.

Seed 001 (``001_a9715376ac5cbd5d.txt``) Table I (2D): 2 + 6 crops of 224 and 92 px, codes
("assignments") computed on crops 0 and 1, the two large ones; sec. III-C: every crop is the
image rescaled by s in [0.1, 0.7], intensity-augmented, and cropped at a uniformly random place
(cropping is the *final* augmentation). SwAV's own recipe (Caron et al. 2020) instead takes
random-resized crops of area fractions (0.14-1 large, 0.05-0.14 small).

* :class:`RescaleCrop` (transform ``rescale_crop``): rescale by s, then a ``size`` crop, in one
  step: the crop window is cut from the source image and resized, which equals rescaling the
  whole image first (up to interpolation) at a fraction of the cost.
* :class:`MultiCrop`: ``n_crops[i]`` crops of side ``sizes[i]``; each crop applies the per-crop
  ``transform`` and its crop step (``crop="random_resized_crop"``, SwAV: crop first, area
  fractions ``scales[i]``; ``crop="rescale_crop"``, seed 001: transform first, rescale factors
  ``scales[i]``, crop last). ``crops_for_assign`` names the views that get codes.

Tests use 2 x 32 + 4 x 16 crops.

[0] SwAV, 2020, https://arxiv.org/abs/2006.09882
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from medxfer.data.transforms import (RandomResizedCrop, Transform, as_range, _uniform,
                                     build_transform, register_transform)

#: Seed 001 Table I (2D) crop counts and sizes.
SEED001_N_CROPS = (2, 6)
SEED001_SIZES = (224, 92)
#: Seed 001 sec. III-C rescale range.
SEED001_RESCALE = (0.1, 0.7)
#: The side our stored image stands for, relative to the large crop (paper geometry: a ~2048 px
#: radiograph and 224 px crops).
PAPER_SIDE_PER_CROP = 2048 / 224


@register_transform("rescale_crop", random=True,
                    reference="001_a9715376ac5cbd5d.txt sec. III-C (rescale before the crop)")
class RescaleCrop(Transform):
    """Rescale the image by s (uniform in ``scale``), then take a ``size`` crop at a random place.

    The input counts as an original of side ``reference_size`` (default: its own longer side),
    so the rescaled side is ``s * reference_size``: with the stored image at 224 px standing for
    a 2048 px radiograph, ``reference_size: 2048`` gives the paper's geometry. A rescaled image
    smaller than the crop is placed at a random offset and zero-padded.

    Args:
        size: Crop side.
        scale: Range of s (seed 001: [0.1, 0.7]).
        reference_size: Side of the original the input stands for.
        fill: Padding value.
    """

    def __init__(self, size: int, scale: Sequence[float] = SEED001_RESCALE,
                 reference_size: float | None = None, fill: float = 0.0):
        self.size, self.scale = int(size), as_range(scale, "scale")
        if self.scale[0] <= 0 or self.size < 1:
            raise ValueError(f"need size >= 1 and scale > 0, got {size}, {scale}")
        if reference_size is not None and reference_size <= 0:
            raise ValueError(f"reference_size must be > 0, got {reference_size}")
        self.reference_size = None if reference_size is None else float(reference_size)
        self.fill = float(fill)

    def __call__(self, x, generator=None):
        h, w = x.shape[-2:]
        s = _uniform(*self.scale, generator)
        f = s * (self.reference_size / max(h, w) if self.reference_size else 1.0)
        rh, rw = h * f, w * f
        if rh >= self.size and rw >= self.size:
            top = _uniform(0, rh - self.size, generator) / f
            left = _uniform(0, rw - self.size, generator) / f
            side = self.size / f
            return TF.resized_crop(x, int(top), int(left), max(1, round(side)),
                                   max(1, round(side)), [self.size, self.size], antialias=True)
        # Rescaled image smaller than the crop on some side: crop what is too long, pad the rest.
        small = TF.resize(x, [max(1, round(rh)), max(1, round(rw))], antialias=True)
        t = int(torch.randint(0, max(0, small.shape[-2] - self.size) + 1, (), generator=generator))
        l_ = int(torch.randint(0, max(0, small.shape[-1] - self.size) + 1, (), generator=generator))
        small = small[..., t:t + self.size, l_:l_ + self.size]
        sh, sw = small.shape[-2:]
        top = int(torch.randint(0, self.size - sh + 1, (), generator=generator))
        left = int(torch.randint(0, self.size - sw + 1, (), generator=generator))
        out = torch.full((*x.shape[:-2], self.size, self.size), self.fill, dtype=x.dtype)
        out[..., top:top + sh, left:left + sw] = small
        return out


class MultiCrop:
    """Multi-crop views of one image (module docstring).

    Args:
        n_crops: Crops per group, e.g. (2, 6).
        sizes: Crop side per group, e.g. (224, 92).
        scales: Per group, the area-fraction range (``random_resized_crop``) or the rescale
            range (``rescale_crop``).
        transform: Per-crop augmentation (a callable or a pipeline spec), or None.
        crop: ``random_resized_crop`` (SwAV) or ``rescale_crop`` (seed 001).
        crops_for_assign: Views that get Sinkhorn codes (default: the first group's).
        reference_size: ``rescale_crop``'s original side (None: the input's side).

    ``__call__(x, generator=None)`` returns a list of ``sum(n_crops)`` tensors, group by group.
    """

    def __init__(self, n_crops: Sequence[int] = (2, 6), sizes: Sequence[int] = (224, 96),
                 scales: Sequence[Sequence[float]] = ((0.14, 1.0), (0.05, 0.14)),
                 transform: Callable | list | dict | None = None,
                 crop: str = "random_resized_crop",
                 crops_for_assign: Sequence[int] | None = None,
                 reference_size: float | None = None):
        if not len(n_crops) == len(sizes) == len(scales) or not n_crops:
            raise ValueError(f"n_crops, sizes and scales need one entry per group, got "
                             f"{list(n_crops)}, {list(sizes)}, {list(scales)}")
        if any(int(n) < 0 for n in n_crops) or sum(n_crops) < 2:
            raise ValueError(f"need >= 2 crops in all, got n_crops={list(n_crops)}")
        if crop not in ("random_resized_crop", "rescale_crop"):
            raise ValueError(f"crop must be 'random_resized_crop' or 'rescale_crop', got {crop!r}")
        self.n_crops, self.sizes = [int(n) for n in n_crops], [int(s) for s in sizes]
        self.scales = [as_range(s, "scales") for s in scales]
        self.crop = crop
        self.transform = build_transform(transform) if isinstance(transform, (list, dict)) \
            else transform
        self.crops_for_assign = list(crops_for_assign) if crops_for_assign is not None \
            else list(range(self.n_crops[0]))
        if not self.crops_for_assign or not set(self.crops_for_assign) <= set(range(self.n_views)):
            raise ValueError(f"crops_for_assign {self.crops_for_assign} must name views in "
                             f"[0, {self.n_views})")
        self._croppers = [RandomResizedCrop(size, scale) if crop == "random_resized_crop"
                          else RescaleCrop(size, scale, reference_size)
                          for size, scale in zip(self.sizes, self.scales)]

    @property
    def n_views(self) -> int:
        return sum(self.n_crops)

    @property
    def view_sizes(self) -> list[int]:
        """The side of every view, in order."""
        return [s for n, s in zip(self.n_crops, self.sizes) for _ in range(n)]

    def _augment(self, x: Tensor, g: torch.Generator | None) -> Tensor:
        if self.transform is None:
            return x
        return self.transform(x, g) if isinstance(self.transform, Transform) else self.transform(x)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        views = []
        for n, cropper in zip(self.n_crops, self._croppers):
            for _ in range(n):
                if self.crop == "random_resized_crop":
                    views.append(self._augment(cropper(x, generator), generator))
                else:
                    views.append(cropper(self._augment(x, generator), generator))
        return views

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "MultiCrop":
        """Build from a YAML-style dict with the constructor's keys."""
        return cls(**spec)


def seed001_multicrop(large: int = 224, small: int = 92, *,
                      n_crops: Sequence[int] = SEED001_N_CROPS,
                      transform: Callable | list | dict | None = None,
                      reference_size: float | None = None) -> MultiCrop:
    """Seed 001's multi-crop: ``n_crops`` of ``large`` and ``small`` px, each rescaled by
    s in [0.1, 0.7] and cropped last; codes on the two large crops. ``reference_size`` defaults
    to the paper's geometry (``large * 2048 / 224``)."""
    ref = reference_size if reference_size is not None else large * PAPER_SIDE_PER_CROP
    return MultiCrop(n_crops, (large, small), (SEED001_RESCALE, SEED001_RESCALE),
                     transform=transform, crop="rescale_crop",
                     crops_for_assign=list(range(n_crops[0])), reference_size=ref)
