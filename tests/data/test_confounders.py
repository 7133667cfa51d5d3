"""Confounder transforms (thesis ch. 4 eq. 4.1-4.2, ch. 5) and their registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxfer.data.confounders import (add_tag, confounder_info,
                                      confounder_transform, list_confounders, low_pass,
                                      nlm_denoise, noise_sigma, poisson_noise)
from medxfer.data.transforms import build_transform, list_transforms
from medxfer.errors import MedxferInputError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_covers_every_confounder():
    assert list_confounders() == ["attribute", "low_pass", "nlm_denoise", "poisson_noise", "tag"]
    for name in list_confounders():
        info = confounder_info(name)
        assert info.name == name and info.category in ("external", "imaging", "demographic")
        assert info.reference.startswith("seed 004")
        if info.kind == "image":
            assert info.transform in list_transforms()
            t = confounder_transform(name)
            x = torch.rand(1, 28, 28, generator=gen())
            y = t(x, generator=gen(1))
            assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
            assert not torch.equal(y, x)
        else:
            assert info.transform is None
            with pytest.raises(MedxferInputError, match="not an image transform"):
                confounder_transform(name)
    with pytest.raises(MedxferInputError,
                       match="unknown confounder 'nope'; valid: attribute, low_pass, "):
        confounder_info("nope")


def test_low_pass_keeps_low_and_removes_high_frequencies():
    m = 32
    yy, xx = np.mgrid[0:m, 0:m]
    low = 0.5 + 0.2 * np.cos(2 * np.pi * 3 * xx / m)
    high = 0.2 * np.cos(2 * np.pi * 12 * yy / m)
    x = torch.from_numpy((low + high)[None]).float()
    y = low_pass(x, d0=6)[0].numpy()
    assert np.allclose(y, low, atol=1e-5)  # eq. 4.1: the 12-cycle wave is cut, the 3-cycle kept
    assert torch.allclose(low_pass(x, d0=100), x.clamp(0, 1), atol=1e-5)


def test_poisson_noise_statistics_follow_eq_4_2():
    x = torch.full((1, 64, 64), 0.5)
    n0 = 1e4
    y = poisson_noise(x, n0=n0, generator=gen(0))
    # counts ~ P(N0 e^-0.5): -log(counts / N0) has std ~ 1 / sqrt(N0 e^-0.5) and mean ~0.5
    assert float(y.mean()) == pytest.approx(0.5, abs=0.002)
    assert float(y.std()) == pytest.approx(1 / np.sqrt(n0 * np.exp(-0.5)), rel=0.1)
    assert torch.equal(y, poisson_noise(x, n0=n0, generator=gen(0)))  # seeded
    assert float(poisson_noise(x, n0=1e9, generator=gen(0)).std()) < 1e-3


def test_nlm_removes_noise_and_sigma_estimate():
    rng = np.random.default_rng(0)
    clean = np.full((32, 32), 0.5)
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    assert noise_sigma(noisy) == pytest.approx(0.05, rel=0.15)
    assert noise_sigma(clean) == pytest.approx(0.0, abs=1e-12)
    out = nlm_denoise(torch.from_numpy(noisy[None]).float())
    assert float((out[0].double() - 0.5).abs().mean()) < 0.5 * np.abs(noisy - 0.5).mean()
    rgb = nlm_denoise(torch.from_numpy(np.stack([noisy] * 3)).float())
    assert rgb.shape == (3, 32, 32)


def test_tag_is_bright_near_the_top_left_and_deterministic():
    x = torch.full((1, 28, 28), 0.3)
    y = add_tag(x)
    rows, cols = (y[0] > 0.9).nonzero(as_tuple=True)
    assert len(rows) >= 8
    assert rows.min() >= 4 and rows.max() < 16 and cols.min() >= 4 and cols.max() < 16
    assert torch.equal(y, add_tag(x))
    rgb = add_tag(torch.zeros(3, 64, 64), value=1.0)
    assert torch.equal(rgb[0], rgb[2]) and float(rgb.max()) == 1.0


def test_pipeline_specs_and_bad_parameters():
    t = build_transform([{"name": "low_pass", "d0": 5}, {"name": "poisson_noise", "n0": 1e5}])
    assert t(torch.rand(1, 16, 16), generator=gen()).shape == (1, 16, 16)
    with pytest.raises(MedxferInputError, match="d0 must be > 0"):
        build_transform([{"name": "low_pass", "d0": 0}])
    with pytest.raises(MedxferInputError, match="n0 must be > 0"):
        build_transform([{"name": "poisson_noise", "n0": -1}])
