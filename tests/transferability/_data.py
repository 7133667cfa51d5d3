"""Small synthetic feature sets: overlapping Gaussian classes (spec pitfall 12: test where the
metrics do not saturate)."""

import numpy as np


def blobs(n=120, d=64, c=3, sep=1.0, seed=0, dtype=np.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centres = rng.normal(size=(c, d)) * sep
    x = (rng.normal(size=(n, d)) + centres[y]) * scale
    return x.astype(dtype), y.astype(np.int64)
