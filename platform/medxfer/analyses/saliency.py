"""``saliency``: where a model looks, scored by the pointing-game hit rate against lesions.

Seed ``000_3dd3de5c534b555f.txt`` sec. 4 (Fig. 5): attention maps of positive images and the hit
rate against expert boxes. Maps from :mod:`medxfer.analyses.attribution` (captum Grad-CAM and
Integrated Gradients), hit rate from :mod:`medxfer.evaluation.hit_rate`; the regions are the
split's ``masks`` or a boxes CSV (:mod:`medxfer.data.boxes`). Only images with a region are
scored; each map explains the image's own label (``target_class`` overrides it).

Files: ``hit_rate.csv`` (method, hit_rate, chance, ratio to chance, n_images),
``saliency_hits.csv`` (per image and method: split index, label, target, score, peak row/col),
``saliency_maps.npz`` (``<method>`` maps ``(n, H, W)``, ``masks``, ``index``) and
``saliency_grid.png`` (images with their region outlined, one row per method).
Metrics: ``hit_rate_<method>``, ``chance``, ``n_images``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medxfer.analyses.attribution import METHODS, feature_layer, saliency_maps
from medxfer.analyses.inputs import Images, ModelRef, load_model, model_input
from medxfer.analyses.plots import pyplot, save, show_image
from medxfer.analyses.record import AnalysisResult, write_csv
from medxfer.errors import MedxferInputError
from medxfer.evaluation.hit_rate import boxes_to_masks, chance_rate, pointing_hits


def regions(images: Images, boxes: str | Path | None) -> np.ndarray:
    """``(n, H, W)`` bool regions: from the boxes CSV if given, else the split's masks."""
    h, w = images.x.shape[-2:]
    if boxes is not None:
        from medxfer.data.boxes import read_boxes

        split = images.label.split("/", 1)[1]
        pos = {int(i): k for k, i in enumerate(images.extras["index"])}
        rows = [(pos[int(r[0])], *r[1:]) for r in read_boxes(boxes, split)
                if int(r[0]) in pos]
        return boxes_to_masks(rows, len(images.x), (h, w))
    if "masks" not in images.extras:
        raise MedxferInputError(f"{images.label} has no masks; pass --boxes CSV "
                                "(split,index,x,y,w,h)", field="--boxes")
    return images.extras["masks"].astype(bool)


def run_saliency(ref: ModelRef, images: Images, out: Path, *, methods: list[str],
                 boxes: str | Path | None = None, target_class: int | None = None,
                 layer: str | None = None, n_steps: int = 32, grid: int = 8) -> AnalysisResult:
    """Maps, hit rates and files for the images of ``images`` that have a region."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise MedxferInputError(f"unknown saliency method(s) {bad}; valid: {list(METHODS)}",
                                field="--methods")
    masks = regions(images, boxes)
    keep = np.flatnonzero(masks.any((1, 2)))
    if not len(keep):
        raise MedxferInputError(f"no image of {images.label} has a lesion region to point at",
                                field="--data")
    model = load_model(ref)
    if model.num_classes < 1:
        raise MedxferInputError(f"{ref.label} has no classifier head (head.* weights): "
                                "saliency explains class scores", field="--model")
    x = model_input(images.x[keep], model)
    labels = np.asarray(images.labels)
    if labels.ndim != 1 and target_class is None:
        raise MedxferInputError("multi-label data: choose the explained label with "
                                "--target-class", field="--target-class")
    targets = np.full(len(keep), target_class) if target_class is not None else labels[keep]
    if targets.max() >= model.num_classes or targets.min() < 0:
        raise MedxferInputError(f"class {int(targets.max())} outside the model's "
                                f"{model.num_classes} classes", field="--target-class")
    lname, lmod = feature_layer(model, x, layer)
    maps = {m: saliency_maps(model, x, torch.as_tensor(targets, dtype=torch.long), m,
                             layer=lmod, n_steps=n_steps) for m in methods}
    region = masks[keep]
    chance = chance_rate(region)
    res = AnalysisResult(
        params={"model": ref.label, "backbone": ref.backbone, "data": images.label,
                "methods": ",".join(methods), "regions": str(boxes) if boxes else "masks",
                "target_class": "label" if target_class is None else str(target_class),
                "gradcam_layer": lname, "ig_steps": str(n_steps)},
        metrics={"chance": chance, "n_images": float(len(keep))})
    rows, table = [], []
    for m, s in maps.items():
        scores = pointing_hits(s, region)
        rate = float(np.mean(scores))
        res.metrics[f"hit_rate_{m}"] = rate
        table.append((m, rate, chance, rate / chance if chance else float("nan"), len(keep)))
        res.lines.append(f"{m:8s} hit rate {rate:.3f} (chance {chance:.3f}, "
                         f"x{rate / chance:.1f}) on {len(keep)} images")
        for k, (i, sc) in enumerate(zip(keep, scores)):
            r, c = np.unravel_index(int(np.argmax(s[k])), s[k].shape)
            rows.append((int(images.extras["index"][i]), _label(labels[i]), int(targets[k]), m,
                         float(sc), int(r), int(c)))
    res.files += [write_csv(out / "hit_rate.csv", ("method", "hit_rate", "chance", "ratio",
                                               "n_images"), table),
                  write_csv(out / "saliency_hits.csv", ("index", "label", "target", "method",
                                                    "score", "peak_row", "peak_col"), rows)]
    np.savez_compressed(out / "saliency_maps.npz", masks=region,
                        index=images.extras["index"][keep], **maps)
    res.files.append("saliency_maps.npz")
    res.files.append(_grid(out / "saliency_grid.png", images.raw[keep][:grid], region[:grid],
                           {m: s[:grid] for m, s in maps.items()}))
    return res


def _label(v) -> str:
    return str(int(v)) if np.ndim(v) == 0 else "".join(str(int(b)) for b in v)


def _grid(path: Path, raw: np.ndarray, region: np.ndarray, maps: dict) -> str:
    plt = pyplot()
    n = len(raw)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(1.4 * n, 1.5 * (1 + len(maps))),
                             squeeze=False)
    for j in range(n):
        show_image(axes[0, j], raw[j])
        axes[0, j].contour(region[j], levels=[0.5], colors="lime", linewidths=0.8)
        for r, (m, s) in enumerate(maps.items(), start=1):
            show_image(axes[r, j], raw[j])
            axes[r, j].imshow(s[j], cmap="jet", alpha=0.5)
            pr, pc = np.unravel_index(int(np.argmax(s[j])), s[j].shape)
            axes[r, j].plot(pc, pr, "w+", markersize=6)
            if j == 0:
                axes[r, 0].set_ylabel(m)
    axes[0, 0].set_ylabel("image")
    return save(fig, path)
