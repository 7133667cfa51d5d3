"""Text removal, stage 1 of DCE (seed 000, sec. 3.1): detect burned-in text, inpaint only it.

The seed detects text with EasyOCR and inpaints with DeepFill; "only text pixels are modified;
thus, the image quality is preserved". Here:

* **Detectors** return boxes ``(x0, y0, x1, y1)`` in pixel coordinates, half-open like
  slicing (``image[y0:y1, x0:x1]`` is the box):

  - :class:`EasyOCRDetector` runs EasyOCR's CRAFT text detector from model files that must
    already be on disk (``craft_mlt_25k.pth``, ``english_g2.pth``). It never downloads: the
    files are checked before the ``easyocr.Reader`` is built (``download_enabled=False``) and
    EasyOCR's own ``FileNotFoundError`` is translated into a :class:`MedxferInputError`.
  - :class:`ClassicalDetector` is an OpenCV detector for burned-in annotations: white and black
    top-hat (thin, high-contrast strokes survive, smooth anatomy and gradients do not),
    a noise-adaptive threshold with hysteresis, character components filtered by size, stroke
    width and edge sharpness (text is drawn with ~1 px edges, anatomy has soft edges), then
    characters merged into lines by a horizontal closing and lines filtered by height, fill
    ratio and character count.
  - :func:`get_detector` picks one: ``auto`` uses EasyOCR when its model files are present in
    ``model_dir`` (or ``$MEDXFER_EASYOCR_DIR``), else the classical detector.

* :func:`remove_text` builds a mask of the text strokes inside the boxes (or whole boxes),
  dilates it, clips it to the boxes and inpaints with ``cv2.inpaint`` (Telea or Navier-Stokes;
  the seed's DeepFill needs weights we do not ship). Every pixel outside the mask is returned
  bit-identical, and the dtype (uint8, uint16, float in [0, 1] or [-1, 1]) is preserved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Protocol, Sequence

import cv2
import numpy as np

from medxfer.errors import MedxferInputError

Box = tuple[int, int, int, int]

EASYOCR_MODEL_FILES = ("craft_mlt_25k.pth", "english_g2.pth")
EASYOCR_ENV = "MEDXFER_EASYOCR_DIR"
_EASYOCR_HOWTO = (
    "download them on a machine with network access, e.g. from "
    "https://github.com/JaidedAI/EasyOCR/releases (craft_mlt_25k.zip from pre-v1.1.6, "
    "english_g2.zip from v1.3; unzip), or copy ~/.EasyOCR/model/ from a machine where "
    "easyocr has run once; then pass the folder with --model-dir or $" + EASYOCR_ENV + ". "
    "Or use the classical OpenCV detector (--detector classical), which needs no files"
)


class TextDetector(Protocol):
    """Anything with ``detect(image) -> list of (x0, y0, x1, y1)`` boxes."""

    name: str

    def detect(self, image: np.ndarray) -> list[Box]: ...


# ---------------------------------------------------------------------------------------------
# image helpers


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """A uint8 single-channel view of ``image`` for detection (the image itself is not changed).

    uint8 is used as is; other dtypes are min-max scaled to 0..255 (so 12-bit data stored in
    uint16, and floats in [0, 1] or [-1, 1], all use the full 8-bit range). Colour images are
    converted with OpenCV's BGR->gray weights (channel order barely matters for text).
    """
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        else:
            img = img[..., :3].astype(np.float32).mean(axis=2) if img.dtype != np.uint8 else \
                cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2GRAY)
    elif img.ndim != 2:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {img.shape}")
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    f = img.astype(np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(f.shape, np.uint8)
    lo, hi = float(f[finite].min()), float(f[finite].max())
    if hi <= lo:
        return np.zeros(f.shape, np.uint8)
    f = np.where(finite, (f - lo) * (255.0 / (hi - lo)), 0.0)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _clip_boxes(boxes: Iterable[Sequence[float]], shape: tuple[int, ...]) -> list[Box]:
    h, w = shape[:2]
    out: list[Box] = []
    for b in boxes:
        x0, y0, x1, y1 = (int(round(float(v))) for v in b)
        x0, x1 = max(0, min(x0, w)), max(0, min(x1, w))
        y0, y1 = max(0, min(y0, h)), max(0, min(y1, h))
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1, y1))
    return out


# ---------------------------------------------------------------------------------------------
# EasyOCR


def easyocr_model_dir(model_dir: str | os.PathLike | None = None) -> Path | None:
    """``model_dir`` if given, else ``$MEDXFER_EASYOCR_DIR``, else None."""
    if model_dir is not None:
        return Path(model_dir)
    env = os.environ.get(EASYOCR_ENV)
    return Path(env) if env else None


def easyocr_models_present(model_dir: str | os.PathLike | None = None) -> bool:
    d = easyocr_model_dir(model_dir)
    return d is not None and all((d / f).is_file() for f in EASYOCR_MODEL_FILES)


def _boxes_from_easyocr(horizontal: Sequence, free: Sequence, shape: tuple[int, ...]) -> list[Box]:
    """EasyOCR ``Reader.detect`` output for one image -> our boxes.

    ``horizontal`` holds ``[x_min, x_max, y_min, y_max]``; ``free`` holds 4-point polygons
    (rotated text), which become their bounding rectangles.
    """
    boxes = [(b[0], b[2], b[1], b[3]) for b in horizontal]
    for poly in free:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        boxes.append((np.floor(pts[:, 0].min()), np.floor(pts[:, 1].min()),
                      np.ceil(pts[:, 0].max()), np.ceil(pts[:, 1].max())))
    return _clip_boxes(boxes, shape)


class EasyOCRDetector:
    """EasyOCR (CRAFT) text detection from local model files only; never downloads.

    ``model_dir`` must hold ``craft_mlt_25k.pth`` and ``english_g2.pth``; otherwise a
    :class:`MedxferInputError` names the folder, the missing files and how to obtain them.
    """

    name = "easyocr"

    def __init__(self, model_dir: str | os.PathLike | None = None, *, gpu: bool | None = None,
                 **detect_kwargs):
        d = easyocr_model_dir(model_dir)
        if d is None:
            raise MedxferInputError(
                "EasyOCR needs its model files in a local folder and none was given "
                f"(--model-dir or ${EASYOCR_ENV}); expected files: "
                f"{', '.join(EASYOCR_MODEL_FILES)}; {_EASYOCR_HOWTO}",
                field="model_dir")
        self.model_dir = d
        missing = [f for f in EASYOCR_MODEL_FILES if not (d / f).is_file()]
        if missing:
            raise MedxferInputError(self._missing_msg(missing), path=str(d), field="model_dir")
        if gpu is None:
            import torch

            gpu = bool(torch.cuda.is_available())
        import easyocr

        try:
            self.reader = easyocr.Reader(
                ["en"], gpu=gpu, model_storage_directory=str(d),
                user_network_directory=str(d),  # keeps EasyOCR from creating ~/.EasyOCR
                download_enabled=False, verbose=False)
        except FileNotFoundError as exc:  # e.g. an MD5 mismatch (truncated / wrong version)
            raise MedxferInputError(
                f"EasyOCR could not load its model files ({exc}); expected valid "
                f"{', '.join(EASYOCR_MODEL_FILES)}; {_EASYOCR_HOWTO}",
                path=str(d), field="model_dir") from exc
        self.detect_kwargs = detect_kwargs

    def _missing_msg(self, missing: list[str]) -> str:
        return (f"EasyOCR model files missing in {self.model_dir}: {', '.join(missing)} "
                f"(expected: {', '.join(EASYOCR_MODEL_FILES)}); downloads are disabled; "
                f"{_EASYOCR_HOWTO}")

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = to_gray_u8(image)
        horizontal, free = self.reader.detect(gray, **self.detect_kwargs)
        return _boxes_from_easyocr(horizontal[0] if horizontal else [],
                                   free[0] if free else [], gray.shape)


# ---------------------------------------------------------------------------------------------
# classical OpenCV detector


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Pixels of ``weak`` connected (8-neighbourhood) to a pixel of ``strong``."""
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong & weak])] = True
    keep[0] = False
    return keep[labels]


@dataclass
class ClassicalDetector:
    """Burned-in text detector with OpenCV morphology (no learned weights).

    Steps (all sizes in pixels of the image):

    1. white top-hat (bright text) and black-hat (dark text) with a square of side
       ``2 * max_stroke + 1`` (default ``max(6, min(H, W) // 170)``): strokes up to
       ``max_stroke`` px wide keep their full contrast; smooth gradients, lungs, large bones and
       blobs wider than the square are removed;
    2. threshold at ``max(min_contrast, median + noise_k * sigma)`` of the response (sigma
       from its MAD, so noisy images need more contrast), with hysteresis down to half that
       level to keep anti-aliased stroke ends;
    3. character candidates = connected components no taller than ``max_height`` (default
       ``max(80, min(H, W) // 8)``) whose edges are sharp: the 90th percentile of the Sobel
       gradient around the component divided by its contrast is at least ``min_sharpness``
       (drawn text has ~1 px edges, ratio 0.75-1.0 measured; a Gaussian blob of sigma s has
       about 0.6 / s, plus a little from noise);
    4. per polarity, characters are merged into lines by a closing with a ``(2 * gap + 1) x 1``
       horizontal kernel (``gap`` defaults to 0.6 x the median character height); a line is
       text when its height is in ``[min_height, max_height]``, its stroke fill ratio is in
       ``[min_fill, max_fill]``, it has at least ``min_chars`` characters or is a single
       character at least ``min_single_height`` tall (side markers "L"/"R"), and its pixels
       depart from the background ring around it in the line's own polarity.

    Boxes are padded by ``pad`` pixels.
    """

    name = "classical"

    max_stroke: int | None = None  # None: max(6, min(H, W) // 170), 12 px at 2048 px
    min_contrast: float = 24.0
    noise_k: float = 6.0
    min_sharpness: float = 0.65
    min_height: int = 5
    max_height: int | None = None  # None: max(80, min(H, W) // 8)
    min_fill: float = 0.08
    max_fill: float = 0.75
    min_chars: int = 2
    min_single_height: int = 8
    gap: int | None = None
    pad: int = 2
    polarity: Literal["both", "bright", "dark"] = "both"

    def stroke_mask(self, image: np.ndarray) -> tuple[np.ndarray, list[Box]]:
        """(text-stroke mask of accepted lines, boxes). The mask is what :meth:`detect` saw."""
        gray = to_gray_u8(image)
        h, w = gray.shape
        stroke = self.max_stroke or max(6, min(h, w) // 170)
        max_h = self.max_height or max(80, min(h, w) // 8)
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * stroke + 1,) * 2)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        grad = np.sqrt(gx * gx + gy * gy) / 4.0  # ~ the intensity step across a sharp edge
        ops = {"bright": cv2.MORPH_TOPHAT, "dark": cv2.MORPH_BLACKHAT}
        polarities = list(ops) if self.polarity == "both" else [self.polarity]
        chars = {pol: self._characters(cv2.morphologyEx(gray, ops[pol], k).astype(np.float32),
                                       grad, max_h) for pol in polarities}
        return self._lines(gray, chars, max_h)

    def detect(self, image: np.ndarray) -> list[Box]:
        return self.stroke_mask(image)[1]

    # -- steps

    def _characters(self, resp: np.ndarray, grad: np.ndarray, max_h: int) -> np.ndarray:
        """Label image of the character candidates of one polarity (0 = none)."""
        med = float(np.median(resp))
        sigma = 1.4826 * float(np.median(np.abs(resp - med)))
        thr = max(self.min_contrast, med + self.noise_k * sigma)
        cand = _hysteresis(resp >= thr, resp >= 0.5 * thr)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), 8)
        keep = np.zeros(n, bool)
        for i in range(1, n):
            x, y, bw, bh, area = stats[i]
            if bh > max_h or area < 2:
                continue
            sl = (slice(max(0, y - 1), y + bh + 1), slice(max(0, x - 1), x + bw + 1))
            comp = labels[sl] == i
            ring = cv2.dilate(comp.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            contrast = float(resp[sl][comp].max())
            sharp = float(np.percentile(grad[sl][ring], 90)) / max(contrast, 1.0)
            keep[i] = sharp >= self.min_sharpness
        labels[~keep[labels]] = 0
        return labels

    def _lines(self, gray: np.ndarray, chars: dict[str, np.ndarray], max_h: int
               ) -> tuple[np.ndarray, list[Box]]:
        """Merge each polarity's characters into lines and keep the text-like ones.

        With both polarities, a line must also agree with :func:`_box_polarity` (its pixels
        depart from the surrounding background in that direction): the gaps between dark
        letters are bright structures to a top-hat and would otherwise form a "bright line".
        """
        h, w = gray.shape
        keep_mask = np.zeros((h, w), bool)
        boxes: list[Box] = []
        for pol, labels in chars.items():
            cand = (labels > 0).astype(np.uint8)
            if not cand.any():
                continue
            _, _, st, _ = cv2.connectedComponentsWithStats(cand, 8)
            tall = st[1:, cv2.CC_STAT_HEIGHT]
            tall = tall[tall >= self.min_height]
            char_h = float(np.median(tall)) if tall.size else float(self.min_height)
            gap = self.gap if self.gap is not None else max(2, int(round(0.6 * char_h)))
            # close horizontally (joins letters and words), a little vertically (i-dots)
            merged = cv2.morphologyEx(cand, cv2.MORPH_CLOSE,
                                      cv2.getStructuringElement(cv2.MORPH_RECT, (2 * gap + 1, 1)))
            merged = cv2.morphologyEx(merged, cv2.MORPH_CLOSE, np.ones((5, 1), np.uint8))
            m, lines, lstats, _ = cv2.connectedComponentsWithStats(merged, 8)
            for j in range(1, m):
                x, y, bw, bh, _ = lstats[j]
                if not (self.min_height <= bh <= max_h + 4):
                    continue
                sl = (slice(y, y + bh), slice(x, x + bw))
                strokes = (labels[sl] > 0) & (lines[sl] == j)
                ys, xs = np.nonzero(strokes)
                y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
                lh, lw = y1 - y0, x1 - x0
                if not (self.min_height <= lh <= max_h):
                    continue
                fill = float(strokes.sum()) / float(lh * lw)
                if not (self.min_fill <= fill <= self.max_fill):
                    continue
                _, _, cst, _ = cv2.connectedComponentsWithStats(strokes.astype(np.uint8), 8)
                n_chars = int(np.sum(cst[1:, cv2.CC_STAT_HEIGHT] >= max(3, 0.4 * lh)))
                if n_chars < 1 or (n_chars < self.min_chars and lh < self.min_single_height):
                    continue
                box = (x + x0, y + y0, x + x1, y + y1)
                if len(chars) > 1 and _box_polarity(gray, box) != pol:
                    continue
                keep_mask[sl] |= strokes
                boxes.append((box[0] - self.pad, box[1] - self.pad,
                              box[2] + self.pad, box[3] + self.pad))
        return keep_mask, _clip_boxes(boxes, gray.shape)


def _box_polarity(gray: np.ndarray, box: Box, ring: int = 3) -> str:
    x0, y0, x1, y1 = box
    h, w = gray.shape
    ox0, oy0, ox1, oy1 = max(0, x0 - ring), max(0, y0 - ring), min(w, x1 + ring), min(h, y1 + ring)
    outer = gray[oy0:oy1, ox0:ox1]
    inner = np.zeros(outer.shape, bool)
    inner[y0 - oy0:y1 - oy0, x0 - ox0:x1 - ox0] = True
    bg_px = outer[~inner]
    bg = float(np.median(bg_px)) if bg_px.size else float(np.median(outer))
    box_px = outer[inner].astype(np.float64)
    if box_px.size == 0:
        return "bright"
    bright = float(np.percentile(box_px, 98)) - bg
    dark = bg - float(np.percentile(box_px, 2))
    return "bright" if bright >= dark else "dark"


# ---------------------------------------------------------------------------------------------
# selection


def get_detector(name: Literal["auto", "easyocr", "classical"] = "auto",
                 model_dir: str | os.PathLike | None = None, **kwargs) -> TextDetector:
    """``easyocr`` (local model files required), ``classical``, or ``auto``: EasyOCR when its
    model files are present in ``model_dir`` / ``$MEDXFER_EASYOCR_DIR``, else classical."""
    if name == "auto":
        name = "easyocr" if easyocr_models_present(model_dir) else "classical"
    if name == "easyocr":
        return EasyOCRDetector(model_dir, **kwargs)
    if name == "classical":
        return ClassicalDetector(**kwargs)
    raise MedxferInputError(f"unknown text detector {name!r}; expected auto, easyocr or classical",
                            field="detector")


# ---------------------------------------------------------------------------------------------
# mask + inpainting


def text_mask(image: np.ndarray, boxes: Sequence[Box], *, mode: Literal["pixels", "box"] = "pixels",
              dilate: int = 2, max_stroke: int = 6) -> np.ndarray:
    """Boolean mask of the pixels to inpaint, always inside ``boxes``.

    ``pixels``: inside each box, the strokes of the box's dominant polarity (white top-hat vs
    black-hat, whichever has more contrast there) thresholded with Otsu, dilated by ``dilate``
    px (anti-aliased edges). ``box``: the whole boxes. The result is clipped to the boxes, so
    nothing outside a detected box is ever changed.
    """
    gray = to_gray_u8(image)
    h, w = gray.shape
    inside = np.zeros((h, w), bool)
    mask = np.zeros((h, w), bool)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * max_stroke + 1,) * 2)
    for x0, y0, x1, y1 in _clip_boxes(boxes, gray.shape):
        inside[y0:y1, x0:x1] = True
        if mode == "box":
            mask[y0:y1, x0:x1] = True
            continue
        # crop with context so the top-hat sees the background around the box
        m = max(2 * max_stroke + 2, y1 - y0)
        cy0, cy1, cx0, cx1 = max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)
        crop = gray[cy0:cy1, cx0:cx1]
        inner = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
        op = cv2.MORPH_TOPHAT if _box_polarity(gray, (x0, y0, x1, y1)) == "bright" \
            else cv2.MORPH_BLACKHAT
        # strokes of big text can be wider than max_stroke: grow the square with the box
        side = max(2 * max_stroke + 1, ((y1 - y0) // 2) | 1)
        kb = k if side == k.shape[0] else cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
        r = np.ascontiguousarray(cv2.morphologyEx(crop, op, kb)[inner])
        score = float(np.percentile(r, 99))
        if score < 8:  # nothing stroke-like (flat box): leave it
            continue
        t, _ = cv2.threshold(r, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask[y0:y1, x0:x1] |= r > max(t, 0.25 * score)
    if mode == "pixels" and dilate > 0:
        kd = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1,) * 2)
        mask = cv2.dilate(mask.astype(np.uint8), kd).astype(bool)
    return mask & inside


def _inpaint_plane(plane: np.ndarray, mask8: np.ndarray, radius: float, flag: int) -> np.ndarray:
    return cv2.inpaint(np.ascontiguousarray(plane), mask8, radius, flag)


def remove_text(image: np.ndarray, detector: TextDetector | None = None, *, dilate: int = 2,
                inpaint_radius: float = 3, method: Literal["telea", "ns"] = "telea",
                mask_mode: Literal["pixels", "box"] = "pixels",
                boxes: Sequence[Box] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Detect text and inpaint it. Returns ``(cleaned, mask)``.

    ``cleaned`` has the dtype and shape of ``image`` and equals it bit for bit wherever
    ``mask`` (bool, (H, W)) is False; ``mask`` lies inside the detected boxes. uint8 images are
    inpainted directly; other dtypes (uint16, float in [0, 1] or [-1, 1], ...) per channel in
    float32, mapped from the image's own min..max to 0..255 and back, rounded (integers) and
    clipped to that range; only the pixels inside the mask are written back. Pass ``boxes``
    to skip detection.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {img.shape}")
    if method not in ("telea", "ns"):
        raise ValueError(f"method must be 'telea' or 'ns', got {method!r}")
    if boxes is None:
        if detector is None:
            detector = ClassicalDetector()
        boxes = detector.detect(img)
    mask = text_mask(img, boxes, mode=mask_mode, dilate=dilate)
    out = img.copy()
    if not mask.any():
        return out, mask
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    mask8 = mask.astype(np.uint8)
    planes = img[..., None] if img.ndim == 2 else img

    if img.dtype == np.uint8 and planes.shape[2] in (1, 3):
        filled = _inpaint_plane(planes if planes.shape[2] == 3 else planes[..., 0], mask8,
                                inpaint_radius, flag)
        filled = filled.reshape(planes.shape)
    else:
        if not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
            raise ValueError(f"unsupported dtype {img.dtype}")
        # the image's own range (12-bit data in uint16, floats in [0, 1] or [-1, 1], ...);
        # inpainted values interpolate their surroundings, so they stay inside it
        finite = img[np.isfinite(img)] if img.dtype.kind == "f" else img
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        # float32 on a 0..255 scale: OpenCV's Telea treats float input as 0..255 data (on
        # [0, 1] floats it returns values around 255), Navier-Stokes works on either
        scale = ((hi - lo) or 1.0) / 255.0
        filled = np.empty(planes.shape, np.float64)
        for c in range(planes.shape[2]):
            p = ((planes[..., c].astype(np.float64) - lo) / scale).astype(np.float32)
            p = np.nan_to_num(p, nan=0.0, posinf=255.0, neginf=0.0)
            filled[..., c] = _inpaint_plane(p, mask8, inpaint_radius, flag)
        filled = filled * scale + lo
        if np.issubdtype(img.dtype, np.integer):
            filled = np.clip(np.rint(filled), lo, hi)
        else:
            filled = np.clip(filled, lo, hi)
        filled = filled.astype(img.dtype)
    filled = filled.reshape(img.shape)
    out[mask] = filled[mask]
    return out, mask
