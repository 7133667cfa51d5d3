"""Lesion boxes as CSV: ``split,index,x,y,w,h`` (pixels, top-left origin, one row per box).

``index`` is the row of the image in its split of the ``.npz``; ``x, y`` the box's left column and
top row, ``w, h`` its width and height (NIH ChestX-ray14's ``Bbox [x, y, w, h]`` convention).
Several rows may name one image. ``medxfer data synth`` writes ``<flag>_boxes.csv`` (size 28) or
``<flag>_<size>_boxes.csv`` beside the ``.npz`` for modalities with lesions; ``medxfer analyze
saliency --boxes`` reads them.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from medxfer.errors import MedxferInputError

COLUMNS = ("split", "index", "x", "y", "w", "h")


def mask_boxes(masks: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """The bounding box ``(index, x, y, w, h)`` of every non-empty mask in ``(n, H, W)``."""
    out = []
    for i, m in enumerate(np.asarray(masks).astype(bool)):
        rows, cols = np.nonzero(m)
        if len(rows):
            out.append((i, int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                        int(rows.max() - rows.min() + 1)))
    return out


def boxes_path(root: str | os.PathLike, flag: str, size: int = 28) -> Path:
    """``<root>/<flag>_boxes.csv`` (size 28) or ``<root>/<flag>_<size>_boxes.csv``."""
    stem = flag if size == 28 else f"{flag}_{size}"
    return Path(root) / f"{stem}_boxes.csv"


def write_boxes(path: str | os.PathLike, rows_by_split: dict[str, list[tuple]]) -> Path:
    """Write ``{split: [(index, x, y, w, h), ...]}`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(".tmp.csv")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for split, rows in rows_by_split.items():
            for row in rows:
                w.writerow((split, *row))
    os.replace(tmp, path)
    return path


def read_boxes(path: str | os.PathLike, split: str, n_images: int | None = None
               ) -> list[tuple[int, float, float, float, float]]:
    """Rows of ``split`` as ``(index, x, y, w, h)``.

    Raises:
        MedxferInputError: Missing file, missing columns, a non-numeric/NaN value, a negative
            index or one ``>= n_images``, or ``w``/``h`` not > 0 (naming file, line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise MedxferInputError("boxes CSV not found", path=str(path))
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MedxferInputError(f"missing column(s) {missing}; expected {list(COLUMNS)}",
                                    path=str(path), line=1)
        out = []
        for line, row in enumerate(reader, start=2):
            if row["split"] != split:
                continue
            out.append(_parse_row(row, path, line, n_images))
    return out


def _parse_row(row: dict, path: Path, line: int, n_images: int | None) -> tuple:
    values = []
    for col in COLUMNS[1:]:
        try:
            v = float(row[col])
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise MedxferInputError(f"expected a number, got {row[col]!r}", path=str(path),
                                    line=line, field=col)
        values.append(v)
    index = values[0]
    if index != int(index) or index < 0 or (n_images is not None and index >= n_images):
        limit = f" below {n_images}" if n_images is not None else ""
        raise MedxferInputError(f"expected an image index >= 0{limit}, got {row['index']!r}",
                                path=str(path), line=line, field="index")
    for col, v in zip(("w", "h"), values[3:]):
        if v <= 0:
            raise MedxferInputError(f"expected {col} > 0, got {v}", path=str(path), line=line,
                                    field=col)
    return (int(index), *values[1:])
