"""Multi-class Dice of label maps: per image and class, and the mean the papers report.

Seed 003 (``003_4aa9fa56a835f729.txt`` sec. IV-A): lung segmentation as a three-class problem
(background, left lung, right lung), evaluated by the Dice coefficient. For class c of image i,
with P and T the pixels predicted as / labelled c:

    Dice_{i,c} = 2 |P & T| / (|P| + |T|),   undefined (NaN) when P and T are both empty

Background handling: class 0 is the background. :func:`mean_dice` averages the *foreground*
classes by default (the lungs, as the paper's "mean Dice"); ``include_background=True`` adds
class 0. A class absent from both the prediction and the label of an image is left out of that
image's mean (NaN-aware), so an image without a lesion is not rewarded for predicting none;
an image whose classes are all absent is left out of the mean over images.
"""

from __future__ import annotations

import numpy as np

from medxfer.evaluation.metrics import dice


def _labels(x) -> np.ndarray:
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return arr[None] if arr.ndim == 2 else arr


def dice_per_class(pred, target, n_classes: int) -> np.ndarray:
    """Dice of every class in every image.

    Args:
        pred: Predicted label maps (argmax of the logits). Shape: (B, H, W) or (H, W).
        target: Label maps with values in [0, n_classes). Same shape.
        n_classes: K, background included.

    Returns:
        Shape (B, K); NaN where class c is absent from both maps of an image.
    """
    p, t = _labels(pred), _labels(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} label maps differ in shape.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2 (background + a class), got {n_classes}.")
    for name, a in (("pred", p), ("target", t)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} has labels outside [0, {n_classes}): "
                             f"{int(a.min())}..{int(a.max())}.")
    return np.stack([dice(t == c, p == c, reduction="none", empty=np.nan)
                     for c in range(n_classes)], axis=1)


def mean_dice(pred, target, n_classes: int, include_background: bool = False) -> float:
    """Mean Dice: per image the mean over (foreground) classes present, then over images.

    Returns NaN when no image has any of the counted classes.
    """
    d = dice_per_class(pred, target, n_classes)
    d = d if include_background else d[:, 1:]
    per_image = [np.mean(row[~np.isnan(row)]) for row in d if (~np.isnan(row)).any()]
    return float(np.mean(per_image)) if per_image else float("nan")


def dice_metrics(pred, target, n_classes: int, prefix: str = "",
                 class_names: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """``<prefix>dice`` (foreground mean, :func:`mean_dice`) and ``<prefix>dice_<class>`` per
    class (NaN-aware mean over the images where the class occurs), background included."""
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes.")
    d = dice_per_class(pred, target, n_classes)
    out = {f"{prefix}dice": mean_dice(pred, target, n_classes)}
    for c, name in enumerate(names):
        col = d[:, c][~np.isnan(d[:, c])]
        out[f"{prefix}dice_{name}"] = float(col.mean()) if col.size else float("nan")
    return out
