"""``domain-gap``: how far datasets (or the sites of one) are apart, as in seed 000 Fig. 1(c).

Seed ``000_3dd3de5c534b555f.txt`` App. A.2; the math (features, MMD, permutation p-value, MDS)
is :mod:`medxfer.evaluation.domain_gap`. A "dataset" is a modality's split, or with ``by_site``
each acquisition site of it (the ``sites`` array of ``medxfer data synth``), so hospital shifts
can be compared.

Files: ``domain_features.csv`` (dataset, index, the 18 features), ``mmd.csv`` (every pair:
mmd2, mmd = sqrt(max(mmd2, 0)), p_value), ``mds.csv`` (dataset, x, y), ``domain_gap_mds.png``
(the MDS map) and ``mmd_matrix.png`` (the distance matrix).
Metrics: ``mmd2/<a>/<b>`` and ``p_value/<a>/<b>`` per pair, ``n_datasets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxfer.analyses.inputs import Images
from medxfer.analyses.plots import pyplot, save
from medxfer.analyses.record import AnalysisResult, write_csv
from medxfer.errors import MedxferInputError
from medxfer.evaluation.domain_gap import FEATURE_NAMES, image_features, mds_map, mmd_matrix


def datasets(images: list[Images], by_site: bool) -> list[tuple[str, np.ndarray]]:
    """``(name, raw images)`` per dataset; names are MLflow-safe (``flag`` or ``flag.site2``)."""
    out = []
    for im in images:
        flag = im.label.split("/", 1)[0]
        if not by_site:
            out.append((flag, im.raw))
            continue
        if "sites" not in im.extras:
            raise MedxferInputError(f"{im.label} has no sites array for --by-site",
                                    field="--by-site")
        for s in np.unique(im.extras["sites"]):
            out.append((f"{flag}.site{int(s)}", im.raw[im.extras["sites"] == s]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise MedxferInputError(f"datasets named twice: {names}", field="--flags")
    if len(out) < 2:
        raise MedxferInputError("need at least two datasets (several --flags, or --by-site "
                                "with several sites)", field="--flags")
    small = [n for n, x in out if len(x) < 2]
    if small:
        raise MedxferInputError(f"datasets with fewer than 2 images: {small}", field="--flags")
    return out


def run_domain_gap(images: list[Images], out: Path, *, by_site: bool = False,
                   n_permutations: int = 500, levels: int = 32, seed: int = 0) -> AnalysisResult:
    """Features, pairwise MMD with p-values, the MDS map, and the files."""
    sets = datasets(images, by_site)
    names = [n for n, _ in sets]
    feats = [image_features(x, levels=levels) for _, x in sets]
    m2, pv = mmd_matrix(feats, n_permutations=n_permutations, seed=seed)
    xy = mds_map(m2, seed=seed)
    res = AnalysisResult(params={"data": ",".join(im.label for im in images),
                                 "by_site": str(by_site), "n_permutations": str(n_permutations),
                                 "glcm_levels": str(levels), "kernel": "gaussian, median heuristic",
                                 "seed": str(seed)},
                         metrics={"n_datasets": float(len(names))})
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            res.metrics[f"mmd2/{a}/{b}"] = float(m2[i, j])
            res.metrics[f"p_value/{a}/{b}"] = float(pv[i, j])
            pairs.append((a, b, float(m2[i, j]), float(np.sqrt(max(m2[i, j], 0))),
                          float(pv[i, j])))
            res.lines.append(f"{a} vs {b}: MMD^2 {m2[i, j]:.4f}, p = {pv[i, j]:.3f}")
    rows = [(n, k, *f) for n, fs in zip(names, feats) for k, f in enumerate(fs)]
    res.files += [write_csv(out / "domain_features.csv", ("dataset", "index", *FEATURE_NAMES),
                            rows),
                  write_csv(out / "mmd.csv", ("dataset_a", "dataset_b", "mmd2", "mmd",
                                              "p_value"), pairs),
                  write_csv(out / "mds.csv", ("dataset", "x", "y"),
                            [(n, float(p[0]), float(p[1])) for n, p in zip(names, xy)]),
                  _mds_png(out / "domain_gap_mds.png", names, xy),
                  _matrix_png(out / "mmd_matrix.png", names, np.sqrt(np.maximum(m2, 0)))]
    return res


def _mds_png(path: Path, names: list[str], xy: np.ndarray) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(xy[:, 0], xy[:, 1], s=40)
    for n, (x, y) in zip(names, xy):
        ax.annotate(n, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_title("Domain gap (MDS of MMD)")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.margins(0.25)
    return save(fig, path)


def _matrix_png(path: Path, names: list[str], d: np.ndarray) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(names), 1 + 0.6 * len(names)))
    im = ax.imshow(d, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    fig.colorbar(im, ax=ax, label="MMD")
    return save(fig, path)
