"""Input checks shared by the feature metrics.

Every metric validates at its boundary and raises ``ValueError`` naming the metric, the
argument and what was expected, so a bad call fails before any numerics run (spec
"How the reference gets its inputs": features (N, D) float, labels (N,) in 0..C-1).
"""

from __future__ import annotations

import numpy as np


def check_features(features, metric: str, *, name: str = "features") -> np.ndarray:
    """Return ``features`` as a finite 2-d float array.

    float32 stays float32; no copy if possible.
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"{metric}: {name} must be 2-d (N, D); got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{metric}: {name} is empty; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(f"{metric}: {name} contain {bad} NaN or inf value(s); "
                         "remove or impute them before scoring")
    return x


def check_labels(labels, n: int, metric: str, *, contiguous: bool = True) -> np.ndarray:
    """Return labels as a 1-d int64 array of length ``n`` with at least two classes.

    Args:
        labels: Shape (N,). Integer class labels (integral floats are accepted).
        n: Number of samples the labels must match.
        metric: Metric name for the error message.
        contiguous: Require labels to be exactly 0..C-1 (every metric of the thesis code
            except LP indexes arrays by label; spec "How the reference gets its inputs").
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{metric}: labels must be 1-d (N,); got shape {y.shape} "
                         "(flatten them with labels.ravel())")
    if y.shape[0] != n:
        raise ValueError(f"{metric}: got {y.shape[0]} labels for {n} feature rows; "
                         "they must match")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) \
                or not np.all(y == np.round(y)):
            raise ValueError(f"{metric}: labels must be integers; got dtype {y.dtype}")
    y = y.astype(np.int64)
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"{metric}: needs at least two classes; labels hold only "
                         f"{classes.tolist()}")
    if contiguous and (classes[0] != 0 or classes[-1] != classes.size - 1):
        raise ValueError(f"{metric}: labels must be 0..C-1 with no gaps; got classes "
                         f"{_short(classes)} (remap them, e.g. with "
                         "np.unique(labels, return_inverse=True)[1])")
    return y


def check_min(value: int, minimum: int, metric: str, what: str) -> None:
    """Raise if ``value < minimum`` (sample counts and dimensions a metric's PCA/GMM needs)."""
    if value < minimum:
        raise ValueError(f"{metric}: {what}")


def _short(a: np.ndarray, k: int = 10) -> str:
    items = a.tolist()
    return str(items) if len(items) <= k else f"{items[:k]}... ({len(items)} classes)"
