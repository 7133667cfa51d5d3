"""Synthetic "modalities" in the MedMNIST ``.npz`` layout, for tests and the offline demo.

Every modality is written as ``<flag>.npz`` (size 28) or ``<flag>_<size>.npz`` with the keys the
real loader reads (``{train,val,test}_images``, ``_labels``) plus ``_patients``, ``_sites`` and,
where the modality has a region of interest, ``_masks`` (0/1 lung fields, lesion, organ or cell:
for Dice and pointing-game checks). With ``text=True`` some images carry burned-in text (OpenCV
``putText`` at random places, like the markers of seed 000 sec. 3.1); the clean images are then
kept as ``_images_clean`` and the text pixels as ``_text_masks``, so text removal can be scored.
A ``<flag>.json`` sidecar holds task, label names and channels; ``manifest.json`` lists all.

Structure (all drawn in normalised coordinates, so any size renders the same scene):

* Patients: 2-4 images each; a patient fixes position, scale, gain, a low-frequency texture
  field and (mostly) the label, so images of one patient are correlated (CL-TCI, seed 003).
* Sites: a patient belongs to one of ``n_sites`` acquisition sites; a site fixes gain, bias,
  gamma (contrast) and noise level, some sites low-contrast (a domain shift; DCE, seed 000).
* Splits are patient-disjoint.

Transfer families (which sources share the class-defining features of which targets):

=================  ==========  =============================================  ================
flag               task        class-defining feature                         family
=================  ==========  =============================================  ================
synthchest         multi-label nodule, effusion, cardiomegaly, opacity        chest
synthpneumonia     binary      patchy lung opacity (same as synthchest's)     chest
synthderm          multi-class lesion shape: disk, square, triangle, cross    shape (RGB)
synthorgan         multi-class organ shape: the same four shapes, CT-like     shape (grey)
synthblood         multi-class cell type: ring, big nucleus, lobed nucleus    blob
synthpath          multi-class stripe orientation 0/45/90/135 degrees         texture
synthoct           multi-class layer deformation: flat, bump, dip, wave       layers
synthlesion        binary      a bright focal lesion anywhere in the tissue   lesion
=================  ==========  =============================================  ================

So sources in the same family should transfer well (chest <-> pneumonia, derm <-> organ), blob
partly to shape (disks, rings), and texture/layers little to the others.

``synthlesion`` is built for the analyses (issue 13): only the lesion carries the label (both
classes share the tissue, its texture and dark vessel-like distractors), the lesion sits at a
random place, its mask is ``_masks`` (empty for normal images) and its bounding boxes are written
to ``<flag>_boxes.csv`` (:mod:`medxfer.data.boxes`), as the expert boxes of seed 000 Fig. 5. It
also carries patient attributes that show in the image (a demographic confounder, thesis
ch. 4): ``_sex`` (0 male, 1 female: a bright band at the bottom of the tissue, like breast
shadows on a chest film) and ``_age_group`` (0 child, 1 adult, 2 senior: the body scale). Other
modalities write the attributes (as metadata only) with ``attributes=True``; they are drawn from
a random stream of their own, so every other array stays as it was.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from medxfer.data.boxes import boxes_path, mask_boxes, write_boxes
from medxfer.data.medmnist import DatasetInfo, write_sidecar
from medxfer.errors import MedxferInputError

Image = np.ndarray  # (H, W) or (H, W, 3) float32 in [0, 1]
_TEXTS = ("L", "R", "AP", "PA", "PORT", "ERECT", "SUPINE", "03/14", "12:05", "ID 4471", "x2")


@dataclass(frozen=True)
class Modality:
    """A synthetic modality: metadata plus ``draw(rng, y, patient, S) -> (image, mask|None)``.

    ``attributes``: always write the patient attributes; ``boxes``: write the masks' bounding
    boxes as ``<flag>_boxes.csv``.
    """

    flag: str
    task: str
    labels: tuple[str, ...]
    n_channels: int
    family: str
    feature: str
    draw: Callable
    attributes: bool = False
    boxes: bool = False


# -------------------------------------------------------------------------- drawing helpers

def _grid(S: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(S, dtype=np.float32) + 0.5) / S
    return c[:, None], c[None, :]  # yy (S,1), xx (1,S)


def _ellipse(S, cx, cy, ax, ay, soft=1.0) -> np.ndarray:
    yy, xx = _grid(S)
    d = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    return np.clip((1.0 - d) * min(ax, ay) * S / soft + 0.5, 0, 1).astype(np.float32)


def _shape(S: int, kind: str, cx: float, cy: float, r: float, angle: float = 0.0) -> np.ndarray:
    """Anti-aliased filled shape (disk, square, triangle, cross, ring) as float mask in [0, 1]."""
    sh = 4  # fixed-point bits for sub-pixel drawing
    k = float(1 << sh)
    canvas = np.zeros((S, S), np.uint8)
    ctr = np.array([cx * S, cy * S])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def poly(pts):
        pts = (np.asarray(pts) * r * S) @ rot.T + ctr
        cv2.fillPoly(canvas, [np.round(pts * k).astype(np.int32)], 255, cv2.LINE_AA, sh)

    if kind in ("disk", "ring"):
        cv2.circle(canvas, tuple(np.round(ctr * k).astype(int)), int(round(r * S * k)), 255,
                   -1, cv2.LINE_AA, sh)
        if kind == "ring":
            cv2.circle(canvas, tuple(np.round(ctr * k).astype(int)), int(round(0.55 * r * S * k)),
                       0, -1, cv2.LINE_AA, sh)
    elif kind == "square":
        poly([[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]])
    elif kind == "triangle":
        poly([[0, -1.1], [1.0, 0.75], [-1.0, 0.75]])
    elif kind == "cross":
        poly([[-1, -0.3], [1, -0.3], [1, 0.3], [-1, 0.3]])
        poly([[-0.3, -1], [0.3, -1], [0.3, 1], [-0.3, 1]])
    else:  # pragma: no cover - internal
        raise AssertionError(kind)
    return canvas.astype(np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, S: int, scale: float) -> np.ndarray:
    """Zero-mean unit-ish low-frequency field; ``scale`` is the blob size as a fraction of S."""
    field = rng.standard_normal((S, S)).astype(np.float32)
    sigma = max(scale * S, 0.5)
    field = cv2.GaussianBlur(field, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return field / (field.std() + 1e-6)


def _blur(img: np.ndarray, S: int, sigma_frac: float = 0.02) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), max(sigma_frac * S, 0.3))


def _rgb(mask_layers: Sequence[tuple[np.ndarray, Sequence[float]]], S: int,
         background: Sequence[float]) -> np.ndarray:
    img = np.empty((S, S, 3), np.float32)
    img[:] = background
    for m, color in mask_layers:
        img = img * (1 - m[..., None]) + m[..., None] * np.asarray(color, np.float32)
    return img


# -------------------------------------------------------------------------- modalities

def _chest(rng, pat, S, *, nodule=0, effusion=0, cardio=0, opacity=0, child=False):
    sc = pat["scale"] * (0.85 if child else 1.0)
    cx, cy = 0.5 + pat["dx"], 0.52 + pat["dy"]
    img = np.full((S, S), 0.04, np.float32)
    img += 0.5 * _ellipse(S, cx, cy + 0.03, 0.44 * sc, 0.47 * sc, soft=2)  # body
    lungs = np.zeros((S, S), np.float32)
    for side in (-1, 1):
        lungs = np.maximum(lungs, _ellipse(S, cx + side * 0.17 * sc, cy - 0.02,
                                           (0.12 + 0.02 * pat["u"][0]) * sc, 0.3 * sc))
    yy, xx = _grid(S)
    ribs = 0.04 * np.sin(2 * np.pi * (7 * yy + 0.3 * np.abs(xx - cx)) + pat["u"][1] * 6)
    img = img - lungs * (0.32 + ribs)
    heart_w = (0.2 if cardio else 0.115) * sc
    heart = _ellipse(S, cx + 0.05 * sc, cy + 0.14 * sc, heart_w, 0.13 * sc)
    img = np.maximum(img, 0.55 * heart)
    mask = lungs * (1 - heart)
    if effusion:
        side = rng.choice((-1, 1))
        base = (yy > cy + (0.04 + 0.06 * rng.random()) * sc) & (np.sign(xx - cx) == side)
        img = np.where(base & (lungs > 0.3), 0.5, img)
    if opacity:
        patch = np.clip(_smooth_noise(rng, S, 0.06) - 0.3, 0, None)
        haze = 0.08 + 0.04 * rng.random()  # diffuse haze plus patchy consolidation
        img = img + (haze + 0.22 * patch) * mask * (1.3 if child else 1.0)
    if nodule:
        ys, xs = np.nonzero(mask > 0.9)
        if len(ys):
            j = rng.integers(len(ys))
            img = img + 0.4 * _shape(S, "disk", (xs[j] + 0.5) / S, (ys[j] + 0.5) / S, 0.06)
    img = img + 0.03 * pat["field"]
    return _blur(img, S, 0.015), (mask > 0.5)


def _draw_chest(rng, y, pat, S):
    return _chest(rng, pat, S, nodule=y[0], effusion=y[1], cardio=y[2], opacity=y[3])


def _draw_pneumonia(rng, y, pat, S):
    return _chest(rng, pat, S, opacity=int(y), child=True)


_SHAPES = ("disk", "square", "triangle", "cross")


def _draw_derm(rng, y, pat, S):
    tone = np.array([0.86, 0.66, 0.56]) * (0.9 + 0.2 * pat["u"][0])
    cx, cy = 0.5 + pat["dx"] + rng.normal(0, 0.02), 0.5 + pat["dy"] + rng.normal(0, 0.02)
    lesion = _blur(_shape(S, _SHAPES[y], cx, cy, 0.24 * pat["scale"], rng.normal(0, 0.2)), S)
    color = np.array([0.42, 0.27, 0.18]) * (0.8 + 0.4 * pat["u"][1])
    img = _rgb([(lesion, color)], S, tone) + 0.04 * pat["field"][..., None]
    for _ in range(rng.integers(0, 3)):  # hairs
        p = (rng.random(4) * S).astype(int)
        cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), (0.25, 0.18, 0.12), 1,
                 cv2.LINE_AA)
    return img, lesion > 0.5


def _draw_organ(rng, y, pat, S):
    cx, cy = 0.5 + pat["dx"], 0.5 + pat["dy"]
    img = 0.32 * _ellipse(S, cx, cy, 0.45 * pat["scale"], 0.38 * pat["scale"], soft=2)
    organ = _shape(S, _SHAPES[y], cx + rng.normal(0, 0.02), cy + rng.normal(0, 0.02),
                   0.2 * pat["scale"], rng.normal(0, 0.2))
    img = np.maximum(img, 0.75 * organ) + 0.05 * pat["field"]
    img = img + 0.35 * _shape(S, "disk", cx, cy + 0.3 * pat["scale"], 0.05)  # vertebra
    return img, organ > 0.5


def _draw_blood(rng, y, pat, S):
    cx, cy = 0.5 + pat["dx"] + rng.normal(0, 0.03), 0.5 + pat["dy"] + rng.normal(0, 0.03)
    s = pat["scale"]
    layers = []
    for _ in range(rng.integers(1, 4)):  # neighbouring red cells near the border
        a = rng.random() * 2 * np.pi
        layers.append((_shape(S, "ring", 0.5 + 0.45 * np.cos(a), 0.5 + 0.45 * np.sin(a), 0.14),
                       (0.85, 0.45, 0.45)))
    if y == 0:
        cell = _shape(S, "ring", cx, cy, 0.22 * s)
        layers.append((cell, (0.8, 0.35, 0.38)))
    else:
        cell = _shape(S, "disk", cx, cy, 0.28 * s)
        layers.append((cell, (0.8, 0.72, 0.85)))
        if y == 1:
            nuc = _shape(S, "disk", cx, cy, 0.19 * s)
        else:
            a0 = rng.random() * 2 * np.pi
            nuc = np.max([_shape(S, "disk", cx + 0.12 * s * np.cos(a0 + k * 2.1),
                                 cy + 0.12 * s * np.sin(a0 + k * 2.1), 0.075 * s)
                          for k in range(3)], axis=0)
        layers.append((nuc, (0.35, 0.15, 0.5)))
    img = _rgb(layers, S, (0.95, 0.9, 0.86)) + 0.03 * pat["field"][..., None]
    return _blur(img, S, 0.01), cell > 0.5


def _draw_path(rng, y, pat, S):
    yy, xx = _grid(S)
    th = np.deg2rad(45 * y + rng.normal(0, 4))
    f = 4.0 * pat["scale"]
    g = 0.5 + 0.5 * np.sin(2 * np.pi * f * (xx * np.cos(th) + yy * np.sin(th)) + rng.random() * 7)
    g = np.clip(g + 0.15 * pat["field"], 0, 1)
    layers = [(g.astype(np.float32), (0.55, 0.3, 0.6))]
    for _ in range(rng.integers(4, 9)):  # nuclei
        layers.append((_shape(S, "disk", *rng.random(2), 0.035), (0.25, 0.1, 0.35)))
    return _rgb(layers, S, (0.93, 0.68, 0.8)), None


def _draw_oct(rng, y, pat, S):
    yy, xx = _grid(S)
    c = 0.5 + pat["dx"] + rng.normal(0, 0.03)
    bump = np.exp(-((xx - c) ** 2) / 0.012)
    shift = {0: 0 * xx, 1: -0.12 * bump, 2: 0.1 * bump,
             3: 0.06 * np.sin(2 * np.pi * 2 * xx + rng.random() * 7)}[int(y)]
    img = np.full((S, S), 0.08, np.float32)
    top = 0.36 + pat["dy"] + shift
    for off, amp in ((0, 0.75), (0.08, 0.35), (0.15, 0.6), (0.24, 0.45)):
        d = (yy - top - off * pat["scale"]) * S
        img = img + amp * np.exp(-(d ** 2) / (2 * (0.025 * S) ** 2))
    img = img * rng.gamma(4.0, 0.25, (S, S)).astype(np.float32)  # speckle
    retina = (yy > top - 0.03) & (yy < top + 0.28 * pat["scale"])
    return img + 0.03 * pat["field"], retina


_AGE_SCALE = (0.85, 1.0, 1.05)  # child, adult, senior


def _point_in(rng, region: np.ndarray, S: int) -> tuple[float, float]:
    """A random pixel centre of ``region > 0.9``, in normalised coordinates."""
    ys, xs = np.nonzero(region > 0.9)
    j = rng.integers(len(ys))
    return (xs[j] + 0.5) / S, (ys[j] + 0.5) / S


def _draw_lesion(rng, y, pat, S):
    sc = pat["scale"] * _AGE_SCALE[pat["age_group"]]
    cx, cy = 0.5 + pat["dx"], 0.5 + pat["dy"]
    tissue = _ellipse(S, cx, cy, 0.46 * sc, 0.44 * sc, soft=2)
    grain = _smooth_noise(rng, S, 0.05)
    img = 0.1 + tissue * (0.36 + 0.05 * pat["field"] + 0.02 * grain)
    if pat["sex"] == 1:  # a visible attribute: bright band at the bottom of the tissue
        img = img + 0.15 * tissue * _ellipse(S, cx, cy + 0.4 * sc, 0.4 * sc, 0.12 * sc, soft=2)
    inner = _ellipse(S, cx, cy, 0.34 * sc, 0.32 * sc)
    for _ in range(rng.integers(2, 4)):  # vessel-like dark distractors, both classes
        img = img - 0.14 * _shape(S, "disk", *_point_in(rng, inner, S), 0.035)
    mask = np.zeros((S, S), bool)
    if y:
        radius = rng.uniform(0.09, 0.12)
        lesion = _blur(_shape(S, "disk", *_point_in(rng, inner, S), radius), S)
        img = img + 0.6 * lesion
        mask = lesion > 0.5
    return _blur(img, S, 0.01), mask


MODALITIES: dict[str, Modality] = {m.flag: m for m in (
    Modality("synthchest", "multi-label, binary-class",
             ("nodule", "effusion", "cardiomegaly", "opacity"), 1, "chest",
             "chest radiograph; labels: nodule, effusion, enlarged heart, patchy opacity",
             _draw_chest),
    Modality("synthpneumonia", "binary-class", ("normal", "pneumonia"), 1, "chest",
             "paediatric chest radiograph; pneumonia = patchy lung opacity", _draw_pneumonia),
    Modality("synthderm", "multi-class", tuple(f"{s}-lesion" for s in _SHAPES), 3, "shape",
             "dermatoscopy-like RGB; class = lesion shape", _draw_derm),
    Modality("synthorgan", "multi-class", tuple(f"{s}-organ" for s in _SHAPES), 1, "shape",
             "CT-like slice; class = organ shape (same shapes as synthderm)", _draw_organ),
    Modality("synthblood", "multi-class", ("erythrocyte", "lymphocyte", "neutrophil"), 3,
             "blob", "blood smear; class = ring cell, big nucleus, three-lobed nucleus",
             _draw_blood),
    Modality("synthpath", "multi-class", ("stripes-0", "stripes-45", "stripes-90", "stripes-135"),
             3, "texture", "H&E-like texture; class = stripe orientation", _draw_path),
    Modality("synthoct", "multi-class", ("flat", "bump", "dip", "wave"), 1, "layers",
             "OCT-like B-scan with speckle; class = retinal layer deformation", _draw_oct),
    Modality("synthlesion", "binary-class", ("normal", "lesion"), 1, "lesion",
             "tissue slice; lesion = one bright focal lesion at a random place (masks, boxes, "
             "patient attributes)", _draw_lesion, attributes=True, boxes=True),
)}

#: Patient attributes: name -> value names (index = the stored value).
ATTRIBUTES = {"sex": ("male", "female"), "age_group": ("child", "adult", "senior")}


# -------------------------------------------------------------------------- sampling

def _site_params(rng: np.random.Generator, n_sites: int) -> list[dict]:
    return [{"gain": rng.uniform(0.8, 1.1), "bias": rng.uniform(-0.04, 0.06),
             "gamma": rng.choice((0.7, 1.0, 1.5)) if k else 1.0,
             "noise": rng.uniform(0.015, 0.05)} for k in range(n_sites)]


def _patient_params(rng: np.random.Generator, S: int) -> dict:
    return {"dx": rng.normal(0, 0.03), "dy": rng.normal(0, 0.03),
            "scale": rng.uniform(0.9, 1.1), "gain": rng.uniform(0.9, 1.1),
            "u": rng.random(4), "field": _smooth_noise(rng, S, 0.12)}


def _split_labels(rng, mod: Modality, n_per_class: int, pid0: int):
    """Labels and patient ids of one split; a patient is 2-4 images of (mostly) one label."""
    if mod.task.startswith("multi-label"):
        n, L = n_per_class * len(mod.labels), len(mod.labels)
        sizes = []
        while sum(sizes) < n:
            sizes.append(int(rng.integers(2, 5)))
        patients = np.repeat(np.arange(len(sizes)), sizes)[:n]
        base = rng.random((len(sizes), L)) < 0.3
        flip = rng.random((n, L)) < 0.08
        return (base[patients] ^ flip).astype(np.uint8), patients + pid0
    y = np.repeat(np.arange(len(mod.labels)), n_per_class)
    sizes = []
    while sum(sizes) < len(y):
        sizes.append(int(rng.integers(2, 5)))
    patients = np.repeat(np.arange(len(sizes)), sizes)[:len(y)]
    return y[:, None].astype(np.uint8), patients + pid0


def _burn_text(rng, img: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw 1-2 random strings at random places (OpenCV ``putText``); return image and mask."""
    mask = np.zeros((S, S), np.uint8)
    for _ in range(rng.integers(1, 3)):
        text = _TEXTS[rng.integers(len(_TEXTS))]
        scale = S / 28 * rng.uniform(0.25, 0.35)
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = int(rng.integers(0, max(1, S - w)))
        yb = int(rng.integers(min(h + 1, S - 1), S))
        cv2.putText(mask, text, (x, yb), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    m = mask.astype(np.float32) / 255.0
    if img.ndim == 3:
        m = m[..., None]
    return img * (1 - m) + m * 0.98, (mask > 127).astype(np.uint8)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _patient_attributes(rng: np.random.Generator) -> dict:
    return {"sex": int(rng.integers(2)), "age_group": int(rng.integers(3))}


def generate_modality(mod: Modality, *, size: int = 28, n_per_class: int = 50, seed: int = 0,
                      text: bool = False, text_prob: float = 0.5, n_sites: int = 3,
                      attributes: bool = False) -> dict[str, np.ndarray]:
    """All arrays of one modality, keyed as in the ``.npz``. Deterministic in ``seed``.

    Train has ``n_per_class`` images per class (``n_per_class * L`` for multi-label); val and test
    ``max(2, n_per_class // 2)`` each. Patient ids are unique across splits. With ``attributes``
    (always for modalities that draw them) the per-image ``_sex`` and ``_age_group`` of the
    patient (:data:`ATTRIBUTES`) are added; they come from their own random stream, so the other
    arrays are the same with and without them.
    """
    rng = np.random.default_rng([seed, zlib.crc32(mod.flag.encode())])
    attr_rng = np.random.default_rng([seed, zlib.crc32(mod.flag.encode()), 1])
    attributes = attributes or mod.attributes
    sites = _site_params(rng, n_sites)
    out: dict[str, np.ndarray] = {}
    pid0 = 0
    for split, n in (("train", n_per_class), ("val", max(2, n_per_class // 2)),
                     ("test", max(2, n_per_class // 2))):
        labels, patients = _split_labels(rng, mod, n, pid0)
        pid0 = int(patients.max()) + 1
        order = rng.permutation(len(labels))
        labels, patients = labels[order], patients[order]
        pats = {p: _patient_params(rng, size) for p in np.unique(patients)}
        for p in pats:
            pats[p].update(_patient_attributes(attr_rng))
        site_of = {p: int(rng.integers(n_sites)) for p in pats}
        imgs, clean, masks, tmasks = [], [], [], []
        for y, p in zip(labels, patients):
            yv = y if mod.task.startswith("multi-label") else int(y[0])
            img, mask = mod.draw(rng, yv, pats[p], size)
            sp = sites[site_of[p]]
            img = np.clip(img * pats[p]["gain"] * sp["gain"] + sp["bias"], 0, 1) ** sp["gamma"]
            img = np.clip(img + rng.normal(0, sp["noise"], img.shape).astype(np.float32), 0, 1)
            clean.append(_to_uint8(img))
            if text and rng.random() < text_prob:
                img, tm = _burn_text(rng, img, size)
            else:
                tm = np.zeros((size, size), np.uint8)
            imgs.append(_to_uint8(img))
            tmasks.append(tm)
            if mask is not None:
                masks.append(mask.astype(np.uint8))
        out[f"{split}_images"] = np.stack(imgs)
        out[f"{split}_labels"] = labels
        out[f"{split}_patients"] = patients.astype(np.int64)
        out[f"{split}_sites"] = np.array([site_of[p] for p in patients], np.int64)
        if masks:
            out[f"{split}_masks"] = np.stack(masks)
        if attributes:
            for key in ATTRIBUTES:
                out[f"{split}_{key}"] = np.array([pats[p][key] for p in patients], np.int64)
        if text:
            out[f"{split}_images_clean"] = np.stack(clean)
            out[f"{split}_text_masks"] = np.stack(tmasks)
    return out


def synthesize(out: str | os.PathLike, *, size: int = 28, n_per_class: int = 50, seed: int = 0,
               text: bool = False, text_prob: float = 0.5, n_sites: int = 3,
               attributes: bool = False, modalities: Iterable[str] | None = None,
               progress: Callable[[Iterable], Iterable] | None = None) -> list[Path]:
    """Write the synthetic modalities under ``out``; return the ``.npz`` paths.

    Args:
        out: output directory (created).
        size: image side, one of 28/64/128/224 (28 -> ``<flag>.npz``, else ``<flag>_<size>.npz``).
        n_per_class: train images per class (see :func:`generate_modality`).
        seed: the same seed writes the same arrays.
        text: burn text into ``text_prob`` of the images (clean copies kept).
        n_sites: acquisition sites per modality.
        attributes: write patient attributes (``_sex``, ``_age_group``) for every modality
            (``synthlesion`` always has them).
        modalities: flags to write (default all of :data:`MODALITIES`).
        progress: wraps the loop over modalities (e.g. ``rich.progress.track``).

    Raises:
        MedxferInputError: unknown modality, bad size or counts.
    """
    from medxfer.data.medmnist import SIZES

    flags = list(MODALITIES) if modalities is None else list(modalities)
    unknown = sorted(set(flags) - set(MODALITIES))
    if unknown:
        raise MedxferInputError(f"unknown modalities {unknown}; valid: {list(MODALITIES)}",
                                field="modalities")
    if size not in SIZES:
        raise MedxferInputError(f"size {size} is not one of {list(SIZES)}", field="size")
    if n_per_class < 1 or n_sites < 1 or not 0 <= text_prob <= 1:
        raise MedxferInputError("need n_per_class >= 1, n_sites >= 1, 0 <= text_prob <= 1",
                                field="n_per_class")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    paths, manifest = [], {}
    for flag in (progress(flags) if progress else flags):
        mod = MODALITIES[flag]
        arrays = generate_modality(mod, size=size, n_per_class=n_per_class, seed=seed, text=text,
                                   text_prob=text_prob, n_sites=n_sites, attributes=attributes)
        path = root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        n_samples = {s: int(len(arrays[f"{s}_labels"])) for s in ("train", "val", "test")}
        extra = {"synthetic": True, "family": mod.family, "description": mod.feature,
                 "n_samples": n_samples, "seed": seed, "text": text, "n_sites": n_sites}
        if attributes or mod.attributes:
            extra["attributes"] = {k: list(v) for k, v in ATTRIBUTES.items()}
        if mod.boxes:
            box_file = write_boxes(boxes_path(root, flag, size), {
                split: mask_boxes(arrays[f"{split}_masks"]) for split in ("train", "val", "test")})
            extra["boxes"] = box_file.name
        write_sidecar(root, DatasetInfo(flag, mod.task, mod.labels, mod.n_channels, extra))
        manifest[flag] = {"task": mod.task, "family": mod.family, "file": path.name,
                          "n_samples": n_samples}
        paths.append(path)
    mpath = root / "manifest.json"
    old = json.loads(mpath.read_text()).get("modalities", {}) if mpath.is_file() else {}
    mpath.write_text(json.dumps({"generator": "medxfer data synth", "size": size, "seed": seed,
                                 "modalities": {**old, **manifest}}, indent=2) + "\n")
    return paths
