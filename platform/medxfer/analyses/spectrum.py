"""``spectrum``: radial PSD of a dataset's images and of a model's input gradients.

Thesis (seed ``004_43f54b618356cecf.txt``) ch. 5 sec. 5.1.3, eq. 5.1
(:mod:`medxfer.evaluation.spectrum`). For a model, ``X`` is the gradient of the prediction loss
(cross-entropy of the true label; BCE for multi-label) with respect to the input image, the
model's spectral "learning priority" (Fig. 5.3). Each image's mean is removed first so the DC
term does not dominate. Curves are shown normalised to their maximum, as in Fig. 5.3.

Files: ``psd.csv`` (k in cycles per image, frequency as a fraction of Nyquist, psd_images and,
with a model, psd_gradients) and ``psd.png``. Metrics: ``peak_frequency_<x>`` (argmax, as a
fraction of Nyquist, DC excluded) and ``centroid_frequency_<x>`` (PSD-weighted mean frequency,
DC excluded) for ``images`` and ``gradients``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from medxfer.analyses.inputs import Images, ModelRef, load_model, model_input
from medxfer.analyses.plots import pyplot, save
from medxfer.analyses.record import AnalysisResult, write_csv
from medxfer.errors import MedxferInputError
from medxfer.evaluation.spectrum import normalised_frequency, radial_psd


def input_gradients(model: nn.Module, x: torch.Tensor, labels: np.ndarray,
                    batch_size: int = 64) -> np.ndarray:
    """``d loss / d x`` per image, ``(n, C, H, W)``: CE of the label (BCE for ``(n, L)``)."""
    y = torch.as_tensor(np.asarray(labels))
    out = []
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size].clone().requires_grad_(True)
        logits = model(xb)
        yb = y[s:s + batch_size]
        if yb.ndim == 2:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, yb.float(),
                                                                  reduction="sum")
        else:
            loss = nn.functional.cross_entropy(logits, yb.long(), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xb)
        out.append(grad.detach().numpy())
    return np.concatenate(out)


def _summary(freq: np.ndarray, psd: np.ndarray) -> tuple[float, float]:
    f, p = freq[1:], psd[1:]
    return float(f[int(np.argmax(p))]), float((f * p).sum() / max(p.sum(), 1e-30))


def run_spectrum(images: Images, out: Path, *, ref: ModelRef | None = None) -> AnalysisResult:
    """PSD of the images and, with ``ref``, of the model's input gradients."""
    side = min(images.x.shape[-2:])
    k, psd_img = radial_psd(images.x, subtract_mean=True)
    freq = normalised_frequency(k, side)
    curves = {"images": psd_img}
    res = AnalysisResult(params={"data": images.label, "n_images": str(len(images.x)),
                                 "model": ref.label if ref else "none",
                                 "psd": "eq. 5.1, 2 pi x ring mean of |F|, per-image mean removed"})
    if ref is not None:
        model = load_model(ref)
        if model.num_classes < 1:
            raise MedxferInputError(f"{ref.label} has no classifier head: input gradients need "
                                    "the prediction loss", field="--model")
        res.params["backbone"] = ref.backbone
        labels = np.asarray(images.labels)
        if labels.ndim == 1 and labels.max(initial=0) >= model.num_classes:
            raise MedxferInputError(f"labels reach {int(labels.max())} but the model has "
                                    f"{model.num_classes} classes", field="--data")
        grads = input_gradients(model, model_input(images.x, model), labels)
        curves["gradients"] = radial_psd(grads, subtract_mean=True)[1]
    for name, p in curves.items():
        peak, centroid = _summary(freq, p)
        res.metrics[f"peak_frequency_{name}"] = peak
        res.metrics[f"centroid_frequency_{name}"] = centroid
        res.lines.append(f"{name:9s} PSD peak at {peak:.3f}, centroid {centroid:.3f} "
                         "(fraction of Nyquist, DC excluded)")
    cols = list(curves)
    rows = [(int(k[i]), float(freq[i]), *(float(curves[c][i]) for c in cols))
            for i in range(len(k))]
    res.files.append(write_csv(out / "psd.csv", ("k", "frequency", *(f"psd_{c}" for c in cols)),
                               rows))
    res.files.append(_psd_png(out / "psd.png", freq, curves, images.label))
    return res


def _psd_png(path: Path, freq: np.ndarray, curves: dict, title: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, p in curves.items():
        ax.plot(freq[1:], p[1:] / max(p[1:].max(), 1e-30), marker=".", label=name)
    ax.set_xlabel("radial frequency (fraction of Nyquist)")
    ax.set_ylabel("normalised PSD (eq. 5.1)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)
