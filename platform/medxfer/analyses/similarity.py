"""``similarity``: what transfer changes inside a model (thesis ch. 3, Fig. 3.3).

Layer-wise CCA similarity (eq. 3.1, SVCCA style: :mod:`medxfer.evaluation.cca`) of two models
over stimulus images, and their prediction similarity (eq. 3.2, with the expectation for
independent mistakes: :mod:`medxfer.evaluation.prediction_similarity`) when both have a
classifier head for the same classes. Layers are matched by name inside the backbone (a
classifier's ``backbone.`` prefix is dropped, so a fine-tuned model compares with its
pre-trained encoder); by default every ``Conv2d`` the two share, in forward order.

Files: ``cca.csv`` (layer, mean_cca, std over repeats, rows, channels of each model),
``prediction_similarity.csv`` (similarity, independent expectation, both accuracies, n) when
computed, and ``cca_layers.png`` (CCA per layer). Metrics: ``cca/<layer>``, ``mean_cca``,
``prediction_similarity``, ``independent_similarity``, ``acc_a``, ``acc_b``.
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
from medxfer.evaluation.cca import layer_cca
from medxfer.evaluation.prediction_similarity import prediction_similarity


def _backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "backbone", model)


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the backbone's ``Conv2d`` modules, in definition order."""
    return [n for n, m in _backbone(model).named_modules() if isinstance(m, nn.Conv2d)]


def activations(model: nn.Module, x: torch.Tensor, layers: list[str],
                batch_size: int = 64) -> dict[str, np.ndarray]:
    """Outputs ``(n, C, h, w)`` of the backbone's ``layers`` for images ``x``."""
    mods = dict(_backbone(model).named_modules())
    got: dict[str, list] = {n: [] for n in layers}
    hooks = [mods[n].register_forward_hook(
        lambda m, i, o, n=n: got[n].append(o.detach().float().cpu().numpy())) for n in layers]
    try:
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                model(x[s:s + batch_size])
    finally:
        for h in hooks:
            h.remove()
    return {n: np.concatenate(v) for n, v in got.items()}


def _layers(a: nn.Module, b: nn.Module, wanted: list[str] | None) -> list[str]:
    names_a = set(dict(_backbone(a).named_modules()))
    names_b = set(dict(_backbone(b).named_modules()))
    if wanted:
        bad = [n for n in wanted if n not in names_a or n not in names_b]
        if bad:
            raise MedxferInputError(f"layer(s) {bad} not in both models; shared conv layers: "
                                    f"{[n for n in conv_layers(a) if n in names_b]}",
                                    field="--layers")
        return wanted
    shared = [n for n in conv_layers(a) if n in set(conv_layers(b))]
    if not shared:
        raise MedxferInputError("the two models share no Conv2d layer names; compare models of "
                                "one architecture or name --layers", field="--layers")
    return shared


def run_similarity(ref_a: ModelRef, ref_b: ModelRef, images: Images, out: Path, *,
                   layers: list[str] | None = None, max_rows: int = 20_000,
                   max_channels: int = 64, repeats: int = 5, keep_variance: float = 0.99,
                   seed: int = 0) -> AnalysisResult:
    """Layer CCA and prediction similarity of two models over ``images``."""
    if not 0 < keep_variance <= 1:
        raise MedxferInputError(f"--keep-variance must be in (0, 1], got {keep_variance}",
                                field="--keep-variance")
    a, b = load_model(ref_a), load_model(ref_b)
    names = _layers(a, b, layers)
    xa, xb = model_input(images.x, a), model_input(images.x, b)
    acts_a, acts_b = activations(a, xa, names), activations(b, xb, names)
    res = AnalysisResult(params={"model_a": ref_a.label, "model_b": ref_b.label,
                                 "backbone_a": ref_a.backbone, "backbone_b": ref_b.backbone,
                                 "data": images.label, "n_images": str(len(images.x)),
                                 "layers": ",".join(names), "max_rows": str(max_rows),
                                 "max_channels": str(max_channels), "repeats": str(repeats),
                                 "keep_variance": str(keep_variance), "seed": str(seed)})
    rows = []
    for n in names:
        try:
            mean, std = layer_cca(acts_a[n], acts_b[n], max_rows=max_rows,
                                  max_channels=max_channels, repeats=repeats,
                                  keep_variance=keep_variance, seed=seed)
        except ValueError as exc:
            raise MedxferInputError(f"layer {n}: {exc}", field="--layers") from None
        rows.append((n, mean, std, acts_a[n].shape[0] * int(np.prod(acts_a[n].shape[2:])),
                     acts_a[n].shape[1], acts_b[n].shape[1]))
        res.metrics[f"cca/{n}"] = mean
        res.lines.append(f"{n:28s} CCA {mean:.3f} +- {std:.3f}")
    res.metrics["mean_cca"] = float(np.mean([r[1] for r in rows]))
    res.files.append(write_csv(out / "cca.csv", ("layer", "mean_cca", "std", "rows",
                                                 "channels_a", "channels_b"), rows))
    res.files.append(_cca_png(out / "cca_layers.png", rows, ref_a.label, ref_b.label))
    pred = _predictions(a, b, xa, xb, images.labels)
    if pred is not None:
        res.metrics.update({"prediction_similarity": pred.similarity,
                            "independent_similarity": pred.independent, "acc_a": pred.acc_a,
                            "acc_b": pred.acc_b})
        res.files.append(write_csv(out / "prediction_similarity.csv",
                                   ("similarity", "independent", "acc_a", "acc_b", "n"),
                                   [(pred.similarity, pred.independent, pred.acc_a, pred.acc_b,
                                     pred.n)]))
        res.lines.append(f"prediction similarity {pred.similarity:.3f} (independent mistakes: "
                         f"{pred.independent:.3f}; accuracies {pred.acc_a:.3f}, "
                         f"{pred.acc_b:.3f})")
    else:
        res.lines.append("prediction similarity: skipped (needs two classifiers for the same "
                         "single-label classes)")
    return res


def _predictions(a, b, xa, xb, labels):
    labels = np.asarray(labels)
    if a.num_classes < 1 or a.num_classes != b.num_classes or labels.ndim != 1:
        return None
    with torch.no_grad():
        pa = torch.cat([a(xa[s:s + 64]) for s in range(0, len(xa), 64)]).argmax(1).numpy()
        pb = torch.cat([b(xb[s:s + 64]) for s in range(0, len(xb), 64)]).argmax(1).numpy()
    return prediction_similarity(pa, pb, labels)


def _cca_png(path: Path, rows: list, label_a: str, label_b: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(rows) + 2), 3.2))
    x = np.arange(len(rows))
    ax.errorbar(x, [r[1] for r in rows], yerr=[r[2] for r in rows], marker="o", capsize=3)
    ax.set_xticks(x, [r[0] for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean CCA (eq. 3.1)")
    ax.set_title(f"{Path(label_a).name} vs {Path(label_b).name}", fontsize=9)
    return save(fig, path)
