"""Every bad-input case raises a clear ValueError, for every feature metric."""

import numpy as np
import pytest

from medxfer.transferability import get_metric, list_metrics, metric_info

from ._data import blobs

FEATURE_METRICS = [n for n in list_metrics() if "model" not in metric_info(n).needs]
CONTIGUOUS = ["logme", "leep", "nleep", "parc", "sfda", "ncti"]  # all but lp and gbc


def _run(name, x, y, logits=None):
    if logits is None:
        logits = np.zeros((np.shape(x)[0], 4), np.float32) if np.ndim(x) == 2 else None
    return get_metric(name)(x, y, source_logits=logits, random_state=0)


@pytest.fixture
def data():
    return blobs(n=100, d=64, c=3, sep=0.6)


@pytest.mark.parametrize("name", FEATURE_METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(name, bad, data):
    x, y = data
    x = x.copy()
    x[3, 5] = bad
    logits = np.zeros((100, 4), np.float32)
    if name == "leep":
        logits[3, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or inf"):
        _run(name, x, y, logits)


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_label_count_mismatch(name, data):
    x, y = data
    with pytest.raises(ValueError, match="got 99 labels for 100"):
        _run(name, x, y[:99])


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_single_class(name, data):
    x, _ = data
    with pytest.raises(ValueError, match="at least two classes"):
        _run(name, x, np.zeros(100, dtype=int))


@pytest.mark.parametrize("name", CONTIGUOUS)
def test_label_gaps(name, data):
    x, y = data
    with pytest.raises(ValueError, match="0..C-1 with no gaps"):
        _run(name, x, np.array([0, 2, 3])[y])


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_wrong_ndim(name, data):
    x, y = data
    with pytest.raises(ValueError, match="must be 1-d"):
        _run(name, x, y.reshape(-1, 1))
    if name != "leep":  # LEEP does not use the features' shape beyond their row count
        with pytest.raises(ValueError, match="must be 2-d"):
            _run(name, x.reshape(100, 8, 8), y, np.zeros((100, 4), np.float32))


def test_non_integer_labels(data):
    x, y = data
    with pytest.raises(ValueError, match="labels must be integers"):
        _run("logme", x, y + 0.5)
    assert _run("logme", x, y.astype(float)) == _run("logme", x, y)  # integral floats accepted


@pytest.mark.parametrize("name,n,d,match", [
    ("ncti", 50, 64, "needs N >= 64"),
    ("ncti", 100, 40, "needs N >= 64 and D >= 64; got N=100, D=40"),
    ("parc", 100, 20, "needs D >= 32"),
    ("lp", 100, 40, "needs D >= 50"),
    ("lp", 4, 64, "needs at least that many samples; got N=4"),
    ("nleep", 8, 64, "2 = 10 components and needs at least that many samples; got N=8"),
])
def test_too_few_samples_or_dimensions(name, n, d, match):
    x, y = blobs(n=n, d=d, c=2)
    with pytest.raises(ValueError, match=match):
        _run(name, x, y)
