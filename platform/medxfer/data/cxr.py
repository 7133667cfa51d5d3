"""Chest X-ray sets from image folders or CSV manifests: PNG (8/16-bit), JPEG, DICOM.

Two ways in, one :class:`Manifest` out, one torch ``Dataset`` over it:

* :func:`scan_folder` -- ``root/<class_name>/**/*.{png,jpg,jpeg,dcm,dicom}``; class names sorted
  give the indices (as torchvision's ``ImageFolder``).
* :func:`read_manifest` -- a CSV with a ``path`` column (relative to the CSV's folder, or
  absolute) and the labels in one of three forms:

  - ``label``: one class per row, a name or an integer index (single-label);
  - ``labels``: ``|``-separated label names, e.g. ``Effusion|Mass`` (multi-label; an empty cell
    or ``No Finding`` means no label unless ``No Finding`` is itself a label name);
  - one 0/1 column per label (multi-label), e.g. the 14 columns of :data:`CXR14_LABELS` or
    :data:`CHEXPERT_LABELS`; blank means 0, CheXpert's ``-1`` (uncertain) follows
    ``uncertain=`` (``"error"``, ``"zero"`` or ``"one"``, the U-Zeros / U-Ones policies).

  Optional columns: ``patient_id``, ``site``, ``age`` and ``split`` (``train``/``val``/``test``;
  patient, site and split columns may have other names: ``patient_column=`` ...). Unknown
  extra columns are ignored in the ``label``/``labels`` forms.

The manifest is validated up front: a missing column names the CSV and the expected columns; a
missing file, an unknown label name, a label out of range or a bad value names the CSV, the line
and the column (:class:`~medxfer.errors.MedxferInputError`, exit code 2 in the CLI). Missing
files can be skipped instead (``on_missing="skip"``).

:class:`CXRDataset` items are ``(image, label)``: a float tensor ``(C, H, W)`` in [0, 1] (grey,
``C = 1``, by default; ``channels=3`` repeats grey / keeps colour) resized to ``size``, and a
``torch.long`` class index or a float ``(L,)`` 0/1 vector (multi-label), as
:class:`~medxfer.data.medmnist.MedMNISTDataset`. Pixel values:

* 8-bit PNG/JPEG: ``v / 255``; 16-bit PNG: ``v / 65535``; colour is converted to grey with the
  ITU-R 601 luma weights (Pillow's ``convert("L")``) unless ``channels=3``.
* DICOM (:func:`read_dicom`): stored values -> modality LUT (``RescaleSlope``,
  ``RescaleIntercept``) -> the first VOI window (``WindowCenter``/``WindowWidth``) when present
  and ``dicom_window`` is true, else the full range the stored bits can take through the
  rescale -> [0, 1] linearly, clipped -> ``MONOCHROME1`` inverted (``1 - x``), so bright is
  always dense tissue as in MONOCHROME2.

Corrupt or unreadable images (``on_error``): ``"raise"`` -> a ``MedxferInputError`` naming the
file; ``"skip"`` -> the path is added to :attr:`CXRDataset.skipped` (logged as a warning) and
the item is replaced by the next readable one. ``verify=True`` decodes every image when the
dataset is built, so skipped images are dropped from it and counted before training starts (in
DataLoader worker processes ``skipped`` only lives in the worker; verify up front to get the
full list in the main process).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medxfer.data.medmnist import DatasetInfo
from medxfer.errors import MedxferInputError, check_choice


def read_csv_rows(csv_path: str | os.PathLike) -> tuple[list[str], list[tuple[int, dict]]]:
    """A manifest CSV as its stripped header and ``(line number, {column: stripped cell})``
    per non-blank row (a BOM is dropped).

    Raises:
        MedxferInputError: a missing or unreadable file, or a row with more cells than the
            header, naming the CSV (and line).
    """
    src = str(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row:  # more cells than header columns
                    raise MedxferInputError(f"{len(header) + len(row[None])} cells for "
                                            f"{len(header)} columns", path=src,
                                            line=reader.line_num)
                if not any((v or "").strip() for v in row.values()):
                    continue  # blank line
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    except FileNotFoundError:
        raise MedxferInputError("manifest not found", path=src) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedxferInputError(f"cannot read the CSV ({type(exc).__name__}: {exc})",
                                path=src) from None
    return header, rows

log = logging.getLogger(__name__)

#: NIH ChestX-ray14 findings (Wang et al. 2017), in the order of MedMNIST's ChestMNIST.
CXR14_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)
#: CheXpert's 14 observations (Irvin et al. 2019), in the order of its CSV columns.
CHEXPERT_LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
LABEL_SETS = {"cxr14": CXR14_LABELS, "chexpert": CHEXPERT_LABELS}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Columns with a meaning; in the one-hot form every other column is a label.
RESERVED_COLUMNS = ("path", "label", "labels", "patient_id", "site", "age", "split")
#: Values of a split column.
SPLIT_NAMES = ("train", "val", "test")
NO_FINDING = ("", "No Finding", "no finding", "none")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Manifest:
    """Images and their metadata, validated.

    Attributes:
        paths: resolved file paths.
        labels: ``(N,)`` int64 class indices, or ``(N, L)`` uint8 0/1 for multi-label.
        label_names: class / label names in index order.
        multilabel: the label form.
        patients, sites: ``(N,)`` string arrays, or ``None`` when the manifest has no column.
        ages: ``(N,)`` float (NaN where blank), or ``None``.
        splits: ``(N,)`` ``train``/``val``/``test`` from a split column, or ``None``.
        source: the CSV or folder it came from.
        lines: CSV line of each row (``None`` for folders).
        skipped: ``[(path, reason)]`` rows dropped (``on_missing="skip"``).
    """

    paths: list[Path]
    labels: np.ndarray
    label_names: tuple[str, ...]
    multilabel: bool
    patients: np.ndarray | None = None
    sites: np.ndarray | None = None
    ages: np.ndarray | None = None
    splits: np.ndarray | None = None
    source: str = ""
    lines: np.ndarray | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def info(self) -> DatasetInfo:
        task = ("multi-label, binary-class" if self.multilabel else
                "binary-class" if len(self.label_names) == 2 else "multi-class")
        return DatasetInfo(Path(self.source).stem or "cxr", task, tuple(self.label_names), 1,
                           {"source": self.source})

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Manifest":
        """The rows ``indices`` (e.g. one side of a split), same label names."""
        idx = np.asarray(indices, dtype=np.int64)

        def pick(a):
            return None if a is None else a[idx]

        return replace(self, paths=[self.paths[i] for i in idx], labels=self.labels[idx],
                       patients=pick(self.patients), sites=pick(self.sites),
                       ages=pick(self.ages), splits=pick(self.splits), lines=pick(self.lines),
                       skipped=list(self.skipped))

    def label_counts(self) -> dict[str, int]:
        """Images per class (single-label) or positives per label (multi-label)."""
        if self.multilabel:
            pos = self.labels.sum(0) if len(self) else np.zeros(len(self.label_names), int)
            return {n: int(c) for n, c in zip(self.label_names, pos)}
        c = np.bincount(self.labels, minlength=len(self.label_names))
        return {n: int(k) for n, k in zip(self.label_names, c)}


def _label_names(label_names: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if label_names is None:
        return None
    if isinstance(label_names, str):
        if label_names.lower() in LABEL_SETS:
            return LABEL_SETS[label_names.lower()]
        label_names = [s.strip() for s in label_names.split(",") if s.strip()]
    names = tuple(str(n) for n in label_names)
    if not names or len(set(names)) != len(names):
        raise MedxferInputError(f"label names must be non-empty and unique, got {list(names)}",
                                field="label_names")
    return names


def _resolve(csv_dir: Path, root: Path | None, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (root or csv_dir) / p


def read_manifest(csv_path: str | os.PathLike, *, label_names: Sequence[str] | str | None = None,
                  on_missing: str = "raise", uncertain: str = "error",
                  root: str | os.PathLike | None = None,
                  check_files: bool = True, patient_column: str | None = None,
                  site_column: str | None = None,
                  split_column: str | None = None) -> Manifest:
    """Read and validate a CSV manifest (columns: module docstring).

    Args:
        csv_path: the CSV (UTF-8; a leading BOM is accepted).
        label_names: class / label names in index order, a comma-separated string, or
            ``"cxr14"`` / ``"chexpert"``. Default: from the data -- sorted names (or
            ``0..max`` for integer ``label``s), sorted ``labels`` names, or the non-reserved
            columns (one-hot form) in CSV order. Given names make unknown names errors and fix
            the range of integer labels.
        on_missing: a listed file that does not exist: ``"raise"`` or ``"skip"`` (kept in
            :attr:`Manifest.skipped` and logged).
        uncertain: CheXpert ``-1`` in one-hot columns: ``"error"``, ``"zero"`` or ``"one"``.
        root: base of relative paths (default: the CSV's folder).
        check_files: check that files exist (off: faster for huge manifests on slow storage).
        patient_column, site_column, split_column: the columns of patient ids, sites and
            splits (None: ``patient_id``, ``site``, ``split`` when the CSV has them). A column
            named here must exist; none of them is a label column.

    Raises:
        MedxferInputError: naming the CSV and, where it applies, line and column.
    """
    check_choice(on_missing, ("raise", "skip"), "on_missing")
    check_choice(uncertain, ("error", "zero", "one"), "uncertain")
    csv_path = Path(csv_path)
    src = str(csv_path)
    header, rows = read_csv_rows(csv_path)

    names = _label_names(label_names)
    expected = ("expected columns: 'path' and one of 'label' (a class per row), 'labels' "
                "('|'-separated names) or one 0/1 column per label; optional 'patient_id', "
                "'site', 'age'")
    if "path" not in header:
        raise MedxferInputError(f"no 'path' column (found {header}); {expected}", path=src,
                                field="path")
    meta = {}
    for role, given, default in (("patient", patient_column, "patient_id"),
                                 ("site", site_column, "site"), ("split", split_column, "split")):
        if given is not None and given not in header:
            raise MedxferInputError(f"no {role} column {given!r} (found {header})", path=src,
                                    field=given)
        meta[role] = given if given is not None else (default if default in header else None)
    reserved = set(RESERVED_COLUMNS) | {c for c in meta.values() if c}
    if "label" in header and "labels" in header:
        raise MedxferInputError(f"both 'label' and 'labels' columns; {expected}", path=src)
    if "label" in header:
        form = "label"
    elif "labels" in header:
        form = "labels"
    else:
        form = "onehot"
        if names is None:
            names = tuple(h for h in header if h not in reserved)
            if not names:
                raise MedxferInputError(f"no label columns (found {header}); {expected}",
                                        path=src)
        else:
            absent = [n for n in names if n not in header]
            if absent:
                raise MedxferInputError(f"label columns {absent} missing (found {header}); "
                                        f"{expected}", path=src, field=absent[0])
    if not rows:
        raise MedxferInputError("the manifest has no rows", path=src)

    # labels
    if form == "label":
        raw = [r["label"] for _, r in rows]
        if names is None:
            if all(_is_int(v) for v in raw):
                names = tuple(str(i) for i in range(max(0, max(int(v) for v in raw)) + 1))
            else:
                names = tuple(sorted(set(raw) - {""}))
        index = {n: i for i, n in enumerate(names)}
        labels = np.empty(len(rows), np.int64)
        for k, (line, r) in enumerate(rows):
            v = r["label"]
            if v in index:
                labels[k] = index[v]
            elif _is_int(v):
                if not 0 <= int(v) < len(names):
                    raise MedxferInputError(f"label {v} out of range [0, {len(names)})",
                                            path=src, line=line, field="label")
                labels[k] = int(v)
            else:
                raise MedxferInputError(f"unknown label {v!r}; known: {list(names)}", path=src,
                                        line=line, field="label")
        multilabel = False
    elif form == "labels":
        split = [[t.strip() for t in r["labels"].split("|")] for _, r in rows]
        if names is None:
            names = tuple(sorted({t for ts in split for t in ts} - set(NO_FINDING)))
            if not names:
                raise MedxferInputError("no label names in column 'labels'", path=src,
                                        field="labels")
        index = {n: i for i, n in enumerate(names)}
        labels = np.zeros((len(rows), len(names)), np.uint8)
        for k, ((line, _), ts) in enumerate(zip(rows, split)):
            for t in ts:
                if t in index:
                    labels[k, index[t]] = 1
                elif t in NO_FINDING and len(ts) == 1:
                    pass
                else:
                    raise MedxferInputError(f"unknown label {t!r}; known: {list(names)}",
                                            path=src, line=line, field="labels")
        multilabel = True
    else:
        labels = np.zeros((len(rows), len(names)), np.uint8)
        for k, (line, r) in enumerate(rows):
            for j, n in enumerate(names):
                v = r[n]
                try:
                    x = float(v) if v else 0.0
                except ValueError:
                    x = math.nan
                if x == -1 and uncertain != "error":
                    x = 1.0 if uncertain == "one" else 0.0
                if x not in (0.0, 1.0):
                    hint = " (uncertain; pass uncertain='zero' or 'one')" if x == -1 else ""
                    raise MedxferInputError(f"value {v!r} is not 0 or 1{hint}", path=src,
                                            line=line, field=n)
                labels[k, j] = int(x)
        multilabel = True

    # metadata columns
    def column(name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        vals = []
        for line, r in rows:
            if not r[name]:
                raise MedxferInputError("empty value", path=src, line=line, field=name)
            vals.append(r[name])
        return np.asarray(vals, dtype=str)

    patients, sites, splits = column(meta["patient"]), column(meta["site"]), column(meta["split"])
    if splits is not None:
        for k, (line, _) in enumerate(rows):
            if splits[k] not in SPLIT_NAMES:
                raise MedxferInputError(f"split {splits[k]!r} is not one of {list(SPLIT_NAMES)}",
                                        path=src, line=line, field=meta["split"])
    ages = None
    if "age" in header:
        ages = np.empty(len(rows))
        for k, (line, r) in enumerate(rows):
            try:
                ages[k] = float(r["age"]) if r["age"] else math.nan
            except ValueError:
                raise MedxferInputError(f"age {r['age']!r} is not a number", path=src,
                                        line=line, field="age") from None

    # files
    base = Path(root) if root is not None else None
    paths, keep, skipped = [], [], []
    for k, (line, r) in enumerate(rows):
        if not r["path"]:
            raise MedxferInputError("empty path", path=src, line=line, field="path")
        p = _resolve(csv_path.parent, base, r["path"])
        if check_files and not p.is_file():
            if on_missing == "raise":
                raise MedxferInputError(f"image file not found: {p}", path=src, line=line,
                                        field="path")
            skipped.append((str(p), f"line {line}: file not found"))
            log.warning("%s, line %d: skipping missing image %s", src, line, p)
            continue
        paths.append(p)
        keep.append(k)
    if skipped:
        log.warning("%s: skipped %d missing image(s)", src, len(skipped))
    keep_a = np.asarray(keep, dtype=np.int64)

    def pick(a):
        return None if a is None else a[keep_a]

    return Manifest(paths, labels[keep_a], tuple(names), multilabel, pick(patients),
                    pick(sites), pick(ages), pick(splits), src,
                    np.asarray([line for line, _ in rows], np.int64)[keep_a], skipped)


def _is_int(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False


def scan_folder(root: str | os.PathLike, *, suffixes: Sequence[str] = IMAGE_SUFFIXES
                ) -> Manifest:
    """``root/<class_name>/**/<image>``: one class per sub-folder, names sorted -> indices.

    Files with other suffixes (and hidden files) are ignored; a class folder without images is
    kept as a class with zero images (indices stay those of the sorted folder names).

    Raises:
        MedxferInputError: no such folder, no class sub-folders, or no images at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise MedxferInputError("image folder not found", path=str(root))
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise MedxferInputError("no class sub-folders (expected root/<class_name>/*.png|jpg|dcm)",
                                path=str(root))
    suf = tuple(s.lower() for s in suffixes)
    paths, labels = [], []
    for c, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in suf and not p.name.startswith("."))
        paths += files
        labels += [c] * len(files)
    if not paths:
        raise MedxferInputError(f"no images with suffixes {list(suf)} under the class folders "
                                f"{classes}", path=str(root))
    return Manifest(paths, np.asarray(labels, np.int64), tuple(classes), False, source=str(root))


# --------------------------------------------------------------------------------------------
# Pixels.
# --------------------------------------------------------------------------------------------

def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_dicom(path: str | os.PathLike, *, window: bool = True) -> np.ndarray:
    """A DICOM image as float32 ``(H, W)`` in [0, 1] (rules in the module docstring)."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    arr = ds.pixel_array.astype(np.float64)
    if arr.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:
        arr = arr[0]  # multi-frame: the first frame
    if arr.ndim == 3:
        arr = arr @ _LUMA.astype(np.float64)  # colour DICOM (rare for CXR)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    arr = arr * slope + intercept
    lo = hi = None
    if window and "WindowCenter" in ds and "WindowWidth" in ds:
        c, w = _first(ds.WindowCenter), _first(ds.WindowWidth)
        if w > 0:
            lo, hi = c - w / 2.0, c + w / 2.0
    if lo is None:
        bits = int(getattr(ds, "BitsStored", 8 * arr.itemsize) or 16)
        signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
        smin, smax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        ends = sorted((smin * slope + intercept, smax * slope + intercept))
        lo, hi = ends
    x = np.clip((arr - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        x = 1.0 - x
    return x.astype(np.float32)


def _first(v) -> float:
    try:
        return float(v[0])  # MultiValue: several windows, take the first
    except TypeError:
        return float(v)


def read_pillow(path: str | os.PathLike) -> np.ndarray:
    """A PNG/JPEG as float32 in [0, 1]: ``(H, W)`` grey or ``(H, W, 3)`` colour."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # decode now, so truncated files fail here
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return (np.asarray(im, dtype=np.float32) / 65535.0)
        if mode == "I":  # 32-bit int; Pillow's mode for some 16-bit PNGs
            a = np.asarray(im, dtype=np.float64)
            return (np.clip(a, 0, 65535) / 65535.0).astype(np.float32)
        if mode == "F":
            a = np.asarray(im, dtype=np.float32)
            lo, hi = float(a.min()), float(a.max())
            return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        if mode in ("L", "1"):
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        if mode == "LA":
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike, *, dicom_window: bool = True) -> np.ndarray:
    """Any supported image as float32 in [0, 1], ``(H, W)`` or ``(H, W, 3)``.

    Raises:
        MedxferInputError: the file cannot be read or decoded (the message names it).
    """
    path = Path(path)
    try:
        arr = read_dicom(path, window=dicom_window) if _is_dicom(path) else read_pillow(path)
    except MedxferInputError:
        raise
    except Exception as exc:  # noqa: BLE001 -- every decoder failure is "unreadable image"
        raise MedxferInputError(f"unreadable image ({type(exc).__name__}: {exc})",
                                path=str(path)) from None
    if arr.ndim not in (2, 3) or arr.size == 0 or not np.isfinite(arr).all():
        raise MedxferInputError(f"unreadable image (decoded to shape {arr.shape})",
                                path=str(path))
    return arr


def to_tensor(arr: np.ndarray, *, channels: int = 1,
              size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """``(H, W[, 3])`` float array in [0, 1] -> ``(channels, h, w)`` tensor, resized (bilinear,
    antialiased) to ``size`` (an int gives a square)."""
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if x.ndim == 3:
        x = x.permute(2, 0, 1)
        if channels == 1:
            x = (x * torch.from_numpy(_LUMA)[:, None, None]).sum(0, keepdim=True)
    else:
        x = x[None]
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(x.shape[-2:]) != hw:
            x = torch.nn.functional.interpolate(x[None], size=hw, mode="bilinear",
                                                align_corners=False, antialias=True)[0]
    if channels == 3 and x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.contiguous().clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Dataset.
# --------------------------------------------------------------------------------------------

class CXRDataset(Dataset):
    """A torch ``Dataset`` over a :class:`Manifest` (build with :meth:`from_csv` or
    :meth:`from_folder`).

    Args:
        manifest: the images and labels.
        size: output side (int: square) or ``(h, w)``; ``None`` keeps each image's size.
        channels: 1 (grey, default) or 3 (RGB; grey repeated).
        transform: callable on the ``(C, H, W)`` tensor (see :mod:`medxfer.data.transforms`).
        on_error: ``"skip"`` or ``"raise"`` for corrupt/unreadable images (module docstring).
        verify: decode every image now; with ``"skip"`` bad ones are dropped from the dataset.
        dicom_window: apply a DICOM's VOI window when it has one.
        indices: a subset of the manifest's rows (e.g. from a split).

    Attributes:
        labels: ``(len,)`` int64 or ``(len, L)`` uint8, aligned with items.
        patients, sites, ages: per-item arrays or ``None``.
        label_names, multilabel, info (:class:`DatasetInfo`), paths.
        skipped: paths of images skipped as unreadable (plus the manifest's missing files);
        n_skipped: their count.
    """

    def __init__(self, manifest: Manifest, *, size: int | tuple[int, int] | None = 224,
                 channels: int = 1, transform: Callable | None = None, on_error: str = "skip",
                 verify: bool = False, dicom_window: bool = True,
                 indices: Sequence[int] | np.ndarray | None = None):
        if on_error not in ("skip", "raise"):
            raise MedxferInputError(f"on_error must be 'skip' or 'raise', got {on_error!r}",
                                    field="on_error")
        if channels not in (1, 3):
            raise MedxferInputError(f"channels must be 1 or 3, got {channels}", field="channels")
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= len(manifest)):
                raise MedxferInputError(f"indices out of range for {len(manifest)} images",
                                        field="indices")
            manifest = manifest.subset(idx)
        self.size, self.channels, self.transform = size, channels, transform
        self.on_error, self.dicom_window = on_error, dicom_window
        self.skipped: list[str] = [p for p, _ in manifest.skipped]
        if verify:
            good = []
            for i, p in enumerate(manifest.paths):
                try:
                    read_image(p, dicom_window=dicom_window)
                    good.append(i)
                except MedxferInputError as exc:
                    if on_error == "raise":
                        raise
                    self._note_skip(p, exc)
            if len(good) < len(manifest):
                log.warning("%s: skipped %d unreadable image(s)", manifest.source,
                            len(manifest) - len(good))
                manifest = replace(manifest.subset(good), skipped=manifest.skipped)
        if len(manifest) == 0:
            raise MedxferInputError("no readable images", path=manifest.source or None)
        self.manifest = manifest

    @classmethod
    def from_csv(cls, csv_path: str | os.PathLike, *, label_names=None, on_missing: str = "raise",
                 uncertain: str = "error", root=None, **kwargs) -> "CXRDataset":
        """Dataset over a CSV manifest (:func:`read_manifest` arguments, then the dataset's)."""
        return cls(read_manifest(csv_path, label_names=label_names, on_missing=on_missing,
                                 uncertain=uncertain, root=root), **kwargs)

    @classmethod
    def from_folder(cls, root: str | os.PathLike, **kwargs) -> "CXRDataset":
        """Dataset over ``root/<class_name>/*`` (:func:`scan_folder`)."""
        return cls(scan_folder(root), **kwargs)

    # metadata -------------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        return self.manifest.labels

    @property
    def patients(self) -> np.ndarray | None:
        return self.manifest.patients

    @property
    def sites(self) -> np.ndarray | None:
        return self.manifest.sites

    @property
    def ages(self) -> np.ndarray | None:
        return self.manifest.ages

    @property
    def paths(self) -> list[Path]:
        return self.manifest.paths

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.manifest.label_names

    @property
    def multilabel(self) -> bool:
        return self.manifest.multilabel

    @property
    def info(self) -> DatasetInfo:
        info = self.manifest.info
        return replace(info, n_channels=self.channels)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    # items ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest)

    def _note_skip(self, path: Path, exc: Exception) -> None:
        if str(path) not in self.skipped:
            self.skipped.append(str(path))
            log.warning("skipping unreadable image: %s", exc)

    def image(self, i: int) -> torch.Tensor:
        """Item ``i``'s image ``(C, H, W)`` in [0, 1] before ``transform``.

        Raises on a bad file.
        """
        arr = read_image(self.manifest.paths[i], dicom_window=self.dicom_window)
        return to_tensor(arr, channels=self.channels, size=self.size)

    def target(self, i: int) -> torch.Tensor:
        if self.multilabel:
            return torch.as_tensor(self.labels[i], dtype=torch.float32)
        return torch.as_tensor(int(self.labels[i]), dtype=torch.long)

    def __getitem__(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        for k in range(n):
            j = (i + k) % n
            try:
                x = self.image(j)
            except MedxferInputError as exc:
                if self.on_error == "raise":
                    raise
                self._note_skip(self.manifest.paths[j], exc)
                continue
            if self.transform is not None:
                x = self.transform(x)
            return x, self.target(j)
        raise MedxferInputError("no readable images", path=self.manifest.source or None)
