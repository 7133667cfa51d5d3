"""Reference band energies for seed 001's energy-based augmentation (eq. 8), as a file.

Seed 001 (``001_a9715376ac5cbd5d.txt`` sec. III-C): the reference energy of band i is the mean
of e_i over R pre-selected reference images (R = 1000); the augmentation samples it from
[mean - sigma, mean + sigma] of those R values. :func:`compute_energy_reference` draws R images
(seeded), computes their band energies with the transform's own code
(:func:`medxfer.data.transforms.band_energies`) and :func:`write_energy_reference` stores mean
and std per band as JSON; the ``energy_reference_normalize`` transform (and the
``medical_ssl`` preset's ``energy_reference``) read it back. Energies depend on the image size
and the sigmas, so both are stored and checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from medxfer.data.transforms import (EnergyBandNormalize, band_energies,
                                     register_transform)
from medxfer.errors import MedxferInputError

FORMAT = "medxfer.energy_reference/1"
DEFAULT_SIGMAS = (1.0, 2.0, 4.0)


def compute_energy_reference(dataset, n_images: int = 1000,
                             sigmas: Sequence[float] = DEFAULT_SIGMAS, seed: int = 0,
                             progress: Callable | None = None) -> dict:
    """Mean and std of the band energies over ``n_images`` images drawn from ``dataset``.

    Args:
        dataset: Items ``(image, ...)`` or images, each (C, H, W) in [0, 1], untransformed.
        n_images: R; all images when the dataset is smaller.
        sigmas: Band edges (pixels), as the transform's.
        seed: Which images are drawn.
        progress: Wraps the loop (e.g. ``rich.progress.track``).

    Returns:
        ``{"format", "sigmas", "mean", "std", "n_images", "size"}``.
    """
    n = len(dataset)
    if n < 2 or n_images < 2:
        raise MedxferInputError(f"need at least 2 reference images (a spread needs two), got "
                                f"{min(n, n_images)}", field="n_images")
    sigmas = [float(s) for s in sigmas]
    if not sigmas or any(s <= 0 for s in sigmas) or sigmas != sorted(sigmas):
        raise MedxferInputError(f"sigmas must be positive and ascending, got {sigmas}",
                                field="sigmas")
    idx = np.random.default_rng(seed).permutation(n)[:min(n, n_images)]
    energies, size = [], None
    for i in (progress(idx) if progress else idx):
        item = dataset[int(i)]
        x = item[0] if isinstance(item, (tuple, list)) else item
        size = list(x.shape[-2:])
        energies.append(band_energies(x.float(), sigmas))
    e = torch.stack(energies).double()
    return {"format": FORMAT, "sigmas": sigmas, "mean": e.mean(0).tolist(),
            "std": e.std(0).tolist(), "n_images": len(idx), "size": size}


def write_energy_reference(ref: dict, path: str | os.PathLike) -> Path:
    """Write ``ref`` as JSON (atomically: a partial file never appears under ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(ref, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_energy_reference(path: str | os.PathLike) -> dict:
    """Read and validate a file written by :func:`write_energy_reference`.

    Raises:
        MedxferInputError: missing file, not JSON, wrong format or inconsistent lengths.
    """
    path = Path(path)
    if not path.is_file():
        raise MedxferInputError("energy reference file not found; write it with `medxfer data "
                                "energy-reference`", path=str(path), field="energy_reference")
    try:
        ref = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MedxferInputError(f"not a readable JSON file ({exc})", path=str(path),
                                field="energy_reference") from None
    if not isinstance(ref, dict) or ref.get("format") != FORMAT:
        raise MedxferInputError(f"not an energy reference (expected format {FORMAT!r})",
                                path=str(path), field="format")
    lengths = {k: len(ref.get(k) or []) for k in ("sigmas", "mean", "std")}
    if len(set(lengths.values())) != 1 or not lengths["sigmas"]:
        raise MedxferInputError(f"sigmas, mean and std need one value per band, got {lengths}",
                                path=str(path), field="mean")
    return ref


@register_transform("energy_reference_normalize", random=True,
                    reference="001_a9715376ac5cbd5d.txt sec. III-C, eq. 8")
class EnergyReferenceNormalize(EnergyBandNormalize):
    """``energy_band_normalize`` with the bands and reference energies of a reference file.

    Args:
        reference: Path of a file from ``medxfer data energy-reference``.
    """

    def __init__(self, reference: str):
        ref = read_energy_reference(reference)
        super().__init__(ref["sigmas"], ref["mean"], ref["std"])
        self.reference = str(reference)
        self.size = list(ref["size"]) if ref.get("size") else None

    def __call__(self, x, generator=None):
        if self.size is not None and list(x.shape[-2:]) != self.size:
            raise MedxferInputError(f"the reference energies were computed on {self.size} px "
                                    f"images, this image is {list(x.shape[-2:])}: recompute them "
                                    "at the size the transform sees", path=self.reference,
                                    field="size")
        return super().__call__(x, generator)


__all__ = ["EnergyReferenceNormalize", "compute_energy_reference",
           "read_energy_reference", "write_energy_reference"]
