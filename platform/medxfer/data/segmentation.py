"""Masks as data: (image, mask) datasets from ``.npz`` masks or a manifest column of PNG masks,
with one random geometric transform applied to both.

Seed 003 (``003_4aa9fa56a835f729.txt`` sec. IV-A) fine-tunes lung segmentation on labelled
masks, "a three-class segmentation problem" (background, left lung, right lung), with
"rotation, translation, and scale" augmentation.

* :class:`NpzSegmentation`: a MedMNIST-layout ``.npz`` with ``<split>_masks`` (the synthetic
  generator writes 0/1 lung fields for ``synthchest``/``synthpneumonia`` and lesion masks for
  ``synthlesion``; organ, cell and layer masks for the others but ``synthpath``).
  ``classes="left_right"`` splits a two-lung mask into left and right lung
  classes (:func:`split_left_right`), as the paper's three classes.
* :class:`ManifestSegmentation`: a CSV with ``path`` (the image) and a mask column (default
  ``mask``) of PNG label maps whose pixel values are class indices (0 = background); a mask
  holding only 0 and 255 is read as 0/1. Optional ``patient_id``.
* :class:`RowsSegmentation`: rows of a ``.npz`` source (its splits pooled, as a study's
  folds see them) with their masks.
* :class:`JointAffine`: rotation, translation, scale (and an optional horizontal flip, off by
  default since it swaps left and right lungs), sampled once and applied to the image
  (bilinear) and the mask (nearest).

Items are ``(image, mask)``: a float tensor (C, H, W) in [0, 1] and a long tensor (H, W).
Bad input (no masks in the file, a mask of another size, labels outside [0, n_classes), an
unreadable mask) is a :class:`~medxfer.errors.MedxferInputError` naming the file and field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torch.utils.data import Dataset

from medxfer.errors import MedxferInputError

CLASSES = ("binary", "left_right")


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


class JointAffine:
    """One random affine transform for an image and its mask (seed 003: rotation, translation,
    scale).

    Args:
        degrees: Rotation uniform in [-degrees, degrees].
        translate: Shift uniform in [-translate, translate] of the side, per axis.
        scale: Zoom factor range.
        hflip: Probability of a left-right mirror (0 by default: it swaps left and right lung).

    ``__call__(image (C, H, W), mask (H, W), generator=None) -> (image, mask)``.
    """

    def __init__(self, degrees: float = 10.0, translate: float = 0.1,
                 scale: Sequence[float] = (0.9, 1.1), hflip: float = 0.0):
        lo, hi = ((float(scale), float(scale)) if isinstance(scale, (int, float))
                  else map(float, scale))
        if lo <= 0 or lo > hi or degrees < 0 or not 0 <= translate < 1 or not 0 <= hflip <= 1:
            raise ValueError(f"need degrees >= 0, 0 <= translate < 1, 0 < scale[0] <= scale[1] "
                             f"and hflip in [0, 1], got {degrees}, {translate}, {scale}, {hflip}")
        self.degrees, self.translate, self.scale, self.hflip = float(degrees), float(translate), \
            (lo, hi), float(hflip)

    def __call__(self, image: Tensor, mask: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        h, w = image.shape[-2:]
        angle = _uniform(-self.degrees, self.degrees, generator)
        tx = round(_uniform(-self.translate, self.translate, generator) * w)
        ty = round(_uniform(-self.translate, self.translate, generator) * h)
        s = _uniform(*self.scale, generator)
        flip = float(torch.rand((), generator=generator)) < self.hflip
        image = TF.affine(image, angle=angle, translate=[tx, ty], scale=s, shear=[0.0, 0.0],
                          interpolation=TF.InterpolationMode.BILINEAR)
        mask = TF.affine(mask[None], angle=angle, translate=[tx, ty], scale=s, shear=[0.0, 0.0],
                         interpolation=TF.InterpolationMode.NEAREST)[0]
        return (image.flip(-1), mask.flip(-1)) if flip else (image, mask)


def split_left_right(mask: np.ndarray) -> np.ndarray:
    """Binary lung mask (H, W) -> labels 0 background, 1 image-left lung, 2 image-right lung.

    Connected components (4-connectivity) are assigned by their centroid column: left of the
    midpoint between the two largest components' centroids is class 1 (with one component,
    the image centre decides). Image-left is the patient's right lung on a PA radiograph.
    """
    from scipy import ndimage

    m = np.asarray(mask) > 0
    comp, n = ndimage.label(m)
    out = np.zeros(m.shape, np.int64)
    if n == 0:
        return out
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum(m, comp, idx)
    cols = np.array([c[1] for c in ndimage.center_of_mass(m, comp, idx)])
    big = np.argsort(-sizes)[:2]
    split = cols[big].mean() if n >= 2 else (m.shape[1] - 1) / 2
    for k, col in zip(idx, cols):
        out[comp == k] = 1 if col < split else 2
    return out


def _check_labels(mask: np.ndarray, n_classes: int, where: str, field: str) -> None:
    if mask.size and (mask.min() < 0 or mask.max() >= n_classes):
        raise MedxferInputError(f"mask labels {int(mask.min())}..{int(mask.max())} are outside "
                                f"[0, {n_classes})", path=where, field=field)


class _SegmentationBase(Dataset):
    """Shared ``__getitem__``: image transform, joint transform, intensity transform."""

    n_classes: int
    joint_transform: Callable | None
    transform: Callable | None

    def _pair(self, i: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image, mask = self._pair(i)
        if self.joint_transform is not None:
            image, mask = self.joint_transform(image, mask)
        if self.transform is not None:
            image = self.transform(image)
        return image, mask


class NpzSegmentation(_SegmentationBase):
    """Images and ``<split>_masks`` of a MedMNIST-layout ``.npz``.

    Args:
        root, flag, split, size: As :class:`~medxfer.data.medmnist.MedMNISTDataset`.
        classes: ``binary`` (mask values as stored: 0/1) or ``left_right`` (3 classes).
        indices: A subset of the split's rows (e.g. M labelled images, a fold).
        joint_transform: e.g. :class:`JointAffine`, on (image, mask).
        transform: Intensity transform on the image only (after the joint one).
        as_rgb: Repeat grey images to 3 channels.

    Attributes:
        n_classes, patients (per item or None), base (the image dataset).
    """

    def __init__(self, root: str | os.PathLike, flag: str, split: str = "train", size: int = 28,
                 *, classes: str = "binary", indices: Sequence[int] | np.ndarray | None = None,
                 joint_transform: Callable | None = None, transform: Callable | None = None,
                 as_rgb: bool = False):
        from medxfer.data.medmnist import MedMNISTDataset, npz_path

        if classes not in CLASSES:
            raise MedxferInputError(f"classes must be one of {list(CLASSES)}, got {classes!r}",
                                    field="classes")
        self.base = MedMNISTDataset(root, flag, split, size, indices=indices, as_rgb=as_rgb)
        self.source = str(npz_path(root, flag, size))
        if "masks" not in self.base.extras:
            raise MedxferInputError(f"no masks: expected the key '{split}_masks' (0/1 or class "
                                    "labels, shape (N, H, W)); `medxfer data synth` writes them "
                                    "for every modality but synthpath",
                                    path=self.source, field=f"{split}_masks")
        masks = np.asarray(self.base.extras["masks"]).astype(np.int64)
        if len(self.base) and masks.shape[1:] != tuple(self.base.image(0).shape[-2:]):
            raise MedxferInputError(f"masks of shape {masks.shape[1:]} do not match the images",
                                    path=self.source, field=f"{split}_masks")
        if classes == "left_right":
            masks = np.stack([split_left_right(m) for m in masks]) if len(masks) else masks
            self.n_classes = 3
        else:
            self.n_classes = max(2, int(masks.max(initial=0)) + 1)
            _check_labels(masks, self.n_classes, self.source, f"{split}_masks")
        self.masks, self.patients = masks, self.base.patients
        self.joint_transform, self.transform = joint_transform, transform

    @property
    def n_channels(self) -> int:
        return self.base.n_channels

    def __len__(self) -> int:
        return len(self.base)

    def _pair(self, i: int) -> tuple[Tensor, Tensor]:
        return self.base.image(i), torch.from_numpy(self.masks[i].copy())


def read_mask(path: str | os.PathLike, n_classes: int, *, size: int | None = None,
              where: str | None = None) -> np.ndarray:
    """A PNG label map as int64 (H, W); 0/255-only masks become 0/1; resized (nearest).

    Raises:
        MedxferInputError: unreadable file, colour image, or labels outside [0, n_classes).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise MedxferInputError(f"mask has mode {im.mode}: expected a single-channel "
                                        "label map (L, P or 16-bit)", path=str(path))
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.NEAREST)
            arr = np.asarray(im).astype(np.int64)
    except MedxferInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is an unreadable mask
        raise MedxferInputError(f"unreadable mask ({type(exc).__name__}: {exc})",
                                path=str(path)) from None
    values = np.unique(arr)
    if values.size and set(values.tolist()) <= {0, 255} and 255 in values:
        arr = (arr == 255).astype(np.int64)
    _check_labels(arr, n_classes, where or str(path), "mask")
    return arr


def read_mask_manifest(csv_path: str | os.PathLike, *, mask_column: str = "mask",
                       root: str | os.PathLike | None = None
                       ) -> tuple[list[Path], list[Path], np.ndarray | None, list[int]]:
    """``path``, mask and optional ``patient_id`` columns of a CSV.

    Returns:
        Image paths, mask paths, patient ids (str array or None) and the CSV line of each row.

    Raises:
        MedxferInputError: missing columns, empty cells or files, naming the CSV, line, column.
    """
    from medxfer.data.cxr import read_csv_rows

    src = str(csv_path)
    header, rows = read_csv_rows(csv_path)
    for col in ("path", mask_column):
        if col not in header:
            raise MedxferInputError(f"no {col!r} column (found {header}); expected 'path', "
                                    f"'{mask_column}' (PNG label maps) and optionally "
                                    "'patient_id'", path=src, field=col)
    if not rows:
        raise MedxferInputError("the manifest has no rows", path=src)
    base = Path(root) if root is not None else Path(csv_path).parent
    images, masks, lines = [], [], []
    for line, r in rows:
        for col, out in (("path", images), (mask_column, masks)):
            if not r.get(col):
                raise MedxferInputError("empty value", path=src, line=line, field=col)
            p = Path(r[col]) if Path(r[col]).is_absolute() else base / r[col]
            if not p.is_file():
                raise MedxferInputError(f"file not found: {p}", path=src, line=line, field=col)
            out.append(p)
        lines.append(line)
    patients = None
    if "patient_id" in header:
        for line, r in rows:
            if not r.get("patient_id"):
                raise MedxferInputError("empty value", path=src, line=line, field="patient_id")
        patients = np.asarray([r["patient_id"] for _, r in rows], dtype=str)
    return images, masks, patients, lines


class ManifestSegmentation(_SegmentationBase):
    """Images and PNG label maps listed in a CSV (see :func:`read_mask_manifest`).

    Args:
        csv_path: The manifest.
        n_classes: Classes, background included (seed 003: 3).
        size: Side images and masks are resized to (masks: nearest); None keeps them.
        mask_column: Column holding the mask paths.
        channels: 1 (grey) or 3.
        indices, joint_transform, transform: As :class:`NpzSegmentation`.
        root: Base of relative paths (default: the CSV's folder).
    """

    def __init__(self, csv_path: str | os.PathLike, n_classes: int = 2, *, size: int | None = 256,
                 mask_column: str = "mask", channels: int = 1,
                 indices: Sequence[int] | np.ndarray | None = None,
                 joint_transform: Callable | None = None, transform: Callable | None = None,
                 root: str | os.PathLike | None = None):
        if n_classes < 2:
            raise MedxferInputError(f"n_classes must be >= 2, got {n_classes}", field="n_classes")
        images, masks, patients, lines = read_mask_manifest(csv_path, mask_column=mask_column,
                                                            root=root)
        idx = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.images, self.mask_paths = [images[i] for i in idx], [masks[i] for i in idx]
        self.lines = [lines[i] for i in idx]
        self.patients = None if patients is None else patients[idx]
        self.source, self.mask_column, self.n_classes = str(csv_path), mask_column, int(n_classes)
        self.size, self.channels = size, channels
        self.joint_transform, self.transform = joint_transform, transform

    @property
    def n_channels(self) -> int:
        return self.channels

    def __len__(self) -> int:
        return len(self.images)

    def _pair(self, i: int) -> tuple[Tensor, Tensor]:
        from medxfer.data.cxr import read_image, to_tensor

        image = to_tensor(read_image(self.images[i]), channels=self.channels, size=self.size)
        where = f"{self.source}, line {self.lines[i]}, {self.mask_paths[i]}"
        mask = read_mask(self.mask_paths[i], self.n_classes, size=self.size, where=where)
        if mask.shape != tuple(image.shape[-2:]):
            raise MedxferInputError(f"mask size {mask.shape} differs from the image "
                                    f"{tuple(image.shape[-2:])}; pass size= to resize both",
                                    path=where, field=self.mask_column)
        return image, torch.from_numpy(mask)


def check_npz_masks(root: str | os.PathLike, flag: str, size: int = 28) -> None:
    """Every split of the ``.npz`` has ``<split>_masks`` (a study's folds pool the splits).

    Raises:
        MedxferInputError: naming the file and the missing key.
    """
    from medxfer.data.medmnist import _open_npz, npz_path

    path = npz_path(root, flag, size)
    with _open_npz(path) as npz:
        for split in ("train", "val", "test"):
            if f"{split}_masks" not in npz.files:
                raise MedxferInputError(f"no masks: expected the key '{split}_masks' (segment "
                                        "rows segment every image of a fold); `medxfer data "
                                        "synth` writes them for every modality but synthpath",
                                        path=str(path), field=f"{split}_masks")


class RowsSegmentation(Dataset):
    """Images and masks of rows of a ``.npz`` *source* (:mod:`medxfer.data.sources`: its
    ``train``, ``val`` and ``test`` splits one after another), so a study cell's rows
    (:func:`medxfer.data.protocol.select_cell`: a fold pools the splits) become (image, mask)
    items.

    Args:
        root, flag, size: The ``.npz`` (as :class:`NpzSegmentation`).
        splits: ``(N,)`` the source's split of each of its rows (``Source.splits``).
        rows: Source rows, in item order.
        classes, joint_transform, transform, as_rgb: As :class:`NpzSegmentation`.

    Attributes:
        rows, n_classes (the parts' largest), patients (per item or None), n_channels.
    """

    def __init__(self, root: str | os.PathLike, flag: str, size: int, splits: np.ndarray,
                 rows: Sequence[int] | np.ndarray, *, classes: str = "binary",
                 joint_transform: Callable | None = None, transform: Callable | None = None,
                 as_rgb: bool = False):
        splits = np.asarray(splits)
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        names = ("train", "val", "test")
        starts = np.cumsum([0] + [int(np.sum(splits == s)) for s in names])
        part_of = np.searchsorted(starts, self.rows, side="right") - 1
        self.parts, where = [], {}
        for k, split in enumerate(names):
            local = self.rows[part_of == k] - starts[k]
            if local.size:
                where[k] = len(self.parts)
                self.parts.append(NpzSegmentation(
                    root, flag, split, size, classes=classes, indices=local,
                    joint_transform=joint_transform, transform=transform, as_rgb=as_rgb))
        # item i -> (part, index in the part), in the order of ``rows``
        seen = dict.fromkeys(where, 0)
        self.items = []
        for k in part_of.tolist():
            self.items.append((where[k], seen[k]))
            seen[k] += 1
        self.n_classes = max((p.n_classes for p in self.parts), default=2)
        pats = [p.patients for p in self.parts]
        self.patients = (None if not pats or any(p is None for p in pats)
                         else np.asarray([pats[p][j] for p, j in self.items]))
        self._channels = self.parts[0].n_channels if self.parts else (3 if as_rgb else 1)

    @property
    def n_channels(self) -> int:
        return self._channels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        p, j = self.items[i]
        return self.parts[p][j]
