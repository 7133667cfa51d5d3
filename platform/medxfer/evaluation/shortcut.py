"""A shortcut study's curves: mean AUC with a 95 % CI over folds per source and ``p_art``, and
a permutation test between sources.

Thesis (seed ``004_43f54b618356cecf.txt``) sec. 4.2.2 and Fig. 4.3/4.4: each source (a
pre-trained model fine-tuned on the confounded target data) is summarised at each share
``p_art`` by its mean AUC over the cross-validation folds with a 95 % confidence interval, on the
i.i.d. test set and on the o.o.d. set (confounder reversed); two sources are compared at each
``p_art`` with a permutation test.

Choices the thesis leaves open (ours): the CI is Student's t interval of the mean,
``mean +- t_{0.975, n-1} s / sqrt(n)`` (sample std ``s``, ddof 1; a single fold has no
interval). :func:`mean_ci` gives the raw interval; the curves' table (:func:`shortcut_curves`,
``shortcut_curves.csv``) clips it to the AUC's range [0, 1], as the figure clips its bands: with
two or three folds ``t`` is 12.7 or 4.3, so a mean near 1 would otherwise get an upper bound
above 1, which no AUC can reach. The permutation test
is two-sided and unpaired, on the difference of the mean fold AUCs, enumerating every
relabelling when there are at most ``EXACT_LIMIT`` of them (Monte Carlo with ``n_perm`` draws
otherwise, p = (1 + #extreme) / (1 + n_perm)). With five folds per source
the exact test's smallest p is 2/252 = 0.0079, the floor of the thesis' "0.008 < p-value".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

#: Test sets of a shortcut cell: metric prefix -> name in the curves.
SETS = {"test": "iid", "ood_test": "ood"}
EXACT_LIMIT = 20_000


@dataclass(frozen=True)
class MeanCI:
    """``mean`` of ``n`` values and its ``level`` confidence interval ``[lo, hi]`` (NaN for
    fewer than two values)."""

    n: int
    mean: float
    lo: float
    hi: float


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """Student's t interval of the mean of ``values`` ``(n,)``.

    Raises:
        ValueError: no value, a non-finite value, or ``level`` outside (0, 1).
    """
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"expected finite values, got {v.tolist()}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean = float(v.mean())
    if v.size < 2:
        return MeanCI(1, mean, math.nan, math.nan)
    half = float(t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return MeanCI(int(v.size), mean, mean - half, mean + half)


def permutation_p(a, b, *, n_perm: int = 10_000, seed: int = 0) -> float:
    """Two-sided permutation p-value of ``mean(a) - mean(b)`` (unpaired; module docstring).

    Args:
        a, b: ``(n_a,)``, ``(n_b,)`` values (fold AUCs of two sources).
        n_perm: Monte Carlo draws when the exact enumeration exceeds ``EXACT_LIMIT``.
        seed: Seed of the Monte Carlo draws.

    Raises:
        ValueError: an empty or non-finite sample.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"expected two non-empty finite samples, got {a.tolist()}, "
                         f"{b.tolist()}")
    pooled, n_a = np.concatenate([a, b]), a.size
    observed = abs(a.mean() - b.mean())
    tol = 1e-12 * max(1.0, observed)  # ties with the observed split count as extreme

    def stat(idx: np.ndarray) -> np.ndarray:  # (k, n_a) group-a indices -> |diff| per split
        mask = np.zeros((len(idx), pooled.size), bool)
        np.put_along_axis(mask, idx, True, axis=1)
        sum_a = (mask * pooled).sum(1)
        return np.abs(sum_a / n_a - (pooled.sum() - sum_a) / b.size)

    if math.comb(pooled.size, n_a) <= EXACT_LIMIT:
        idx = np.array(list(itertools.combinations(range(pooled.size), n_a)), dtype=np.int64)
        return float((stat(idx) >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n_perm, pooled.size)), axis=1)[:, :n_a]
    return float((1 + (stat(idx) >= observed - tol).sum()) / (1 + n_perm))


def fold_values(records: list[dict], metric: str = "auc") -> dict[tuple[str, float, str],
                                                                    list[float]]:
    """``(source, p_art, set) -> fold values`` of a shortcut study's finished training cells
    (records of :func:`medxfer.tune.study.cell_records`; ``set`` ``iid`` or ``ood``, from
    metrics ``test_<metric>`` and ``ood_test_<metric>``)."""
    out: dict[tuple[str, float, str], list[float]] = {}
    for r in records:
        if r.get("phase") != "train" or r.get("p_art") is None:
            continue
        if r.get("status") not in (None, "FINISHED"):
            continue
        for prefix, name in SETS.items():
            value = r["metrics"].get(f"{prefix}_{metric}")
            if value is not None and math.isfinite(value):
                out.setdefault((r["row"], float(r["p_art"]), name), []).append(float(value))
    return out


def shortcut_curves(records: list[dict], metric: str = "auc", level: float = 0.95,
                    bounds: tuple[float, float] = (0.0, 1.0)):
    """One row per (source, set, p_art): ``n``, ``mean``, ``lo``, ``hi`` (a DataFrame sorted by
    source, set, p_art) of :func:`fold_values`.

    ``lo`` and ``hi`` are :func:`mean_ci`'s interval clipped to ``bounds`` (the range of
    ``metric``; AUC's [0, 1] by default); NaN (a single fold) stays NaN.
    """
    import pandas as pd

    rows = []
    for (source, p_art, name), values in sorted(fold_values(records, metric).items()):
        ci = mean_ci(values, level)
        lo, hi = np.clip([ci.lo, ci.hi], *bounds)  # np.clip keeps NaN
        rows.append({"source": source, "set": name, "p_art": p_art, "n": ci.n,
                     "mean": ci.mean, "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows, columns=["source", "set", "p_art", "n", "mean", "lo", "hi"])


def source_permutations(records: list[dict], metric: str = "auc", *, n_perm: int = 10_000,
                        seed: int = 0):
    """The permutation test between every pair of sources at each (set, p_art): a DataFrame
    with ``set``, ``p_art``, ``source_a``, ``source_b``, ``diff`` (mean a - mean b) and ``p``."""
    import pandas as pd

    values = fold_values(records, metric)
    rows = []
    for name, p_art in sorted({(k[2], k[1]) for k in values}):
        sources = sorted(s for s, p, n in values if p == p_art and n == name)
        for sa, sb in itertools.combinations(sources, 2):
            a, b = values[(sa, p_art, name)], values[(sb, p_art, name)]
            rows.append({"set": name, "p_art": p_art, "source_a": sa, "source_b": sb,
                         "diff": float(np.mean(a) - np.mean(b)),
                         "p": permutation_p(a, b, n_perm=n_perm, seed=seed)})
    return pd.DataFrame(rows, columns=["set", "p_art", "source_a", "source_b", "diff", "p"])
