"""Registry-wide tests: every metric registered gets them (timm/sklearn style)."""

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

import medxfer.transferability as tx
from medxfer.transferability import get_metric, list_metrics, metric_info
from medxfer.transferability.fu import fu_loader

from ._data import blobs

EXPECTED = {"logme", "leep", "nleep", "parc", "sfda", "ncti", "gbc", "lp", "fu"}


def test_every_metric_is_registered_and_classified():
    assert set(list_metrics()) == EXPECTED
    for name in list_metrics():
        info = metric_info(name)
        assert info.name == name and info.needs <= {"features", "logits", "model"}
        assert info.higher_is_better
        assert (info.range is None) == (info.returns == "ncti_terms")
    assert [n for n in list_metrics() if not metric_info(n).deterministic] == ["nleep"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError,
                       match="unknown transferability metric 'leap'; valid: fu, gbc, leep"):
        get_metric("leap")


def test_public_api():
    assert callable(tx.get_metric) and tx.list_metrics() == list_metrics()


def _inputs():
    x, y = blobs(n=100, d=64, c=3, sep=0.6)
    logits = np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)
    return x, y, logits


def _call(name, x, y, logits):
    info = metric_info(name)
    if "model" in info.needs:
        torch.manual_seed(0)
        model = torchvision.models.resnet18(num_classes=3)
        model.layer2 = model.layer3 = model.layer4 = nn.Identity()
        model.fc = nn.Linear(64, 3)
        g = torch.Generator().manual_seed(0)
        # Batches of 3 hold triplets.
        data = TensorDataset(torch.randn(18, 3, 32, 32, generator=g), torch.arange(18) % 2)
        return info.fn(model, fu_loader(data), progress=False)
    kwargs = {"source_logits": logits}
    if not info.deterministic:
        kwargs["random_state"] = 0
    return info.fn(x, y, **kwargs)


def _check_range(info, value):
    if info.returns == "ncti_terms":
        for term, (lo, hi) in info.term_ranges.items():
            v = getattr(value, term)
            assert math.isfinite(v) and lo <= v <= hi, (term, v)
    else:
        lo, hi = info.range
        assert isinstance(value, float) and math.isfinite(value) and lo <= value <= hi


@pytest.mark.parametrize("name", list_metrics())
def test_finite_in_range_inputs_untouched_and_repeatable(name):
    info = metric_info(name)
    x, y, logits = _inputs()
    copies = [a.copy() for a in (x, y, logits)]
    first = _call(name, x, y, logits)
    _check_range(info, first)
    for before, after in zip(copies, (x, y, logits)):
        np.testing.assert_array_equal(before, after)
    second = _call(name, x, y, logits)  # seeded for the stochastic one
    assert second == first
