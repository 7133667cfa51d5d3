"""Per-paper augmentations: shapes, ranges, determinism, YAML composition, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medxfer.methods  # noqa: F401  registers the model-backed 'dce' transform
from medxfer.data.transforms import (EnergyBandNormalize, RandomCrop, RandomGamma, RandomLinear,
                                     RandomRescale, RandomResizedCrop, RandomRotation, Transform,
                                     TwoViews, XRVScale, band_energies, build_transform,
                                     energy_bands, list_transforms, preset, reference_energies,
                                     register_transform, transform_info)
from medxfer.errors import MedxferInputError


def img(c=1, s=28, seed=0):
    return torch.rand((c, s, s), generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_scc_preset_shape_range_and_determinism():
    t = preset("scc", size=32)
    x = img(1, 28)
    a, b = t(x, gen(1)), t(x, gen(1))
    assert a.shape == (1, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, t(x, gen(2)))
    assert a.min() >= -1024 and a.max() <= 1024 and a.max() > 500 and a.min() < -500


def test_xrv_scale_endpoints():
    x = torch.tensor([[[0.0, 0.5, 1.0, 1.5, -0.2]]])
    assert XRVScale()(x).tolist() == [[[-1024.0, 0.0, 1024.0, 1024.0, -1024.0]]]


def test_random_resized_crop_area_ratio():
    # A 1-pixel-wide grid line pattern: crop area in [0.6, 1.0] keeps >= 60% of a constant image
    # area; test the sampled box through an all-ones image padded with zeros is never degenerate.
    x = torch.ones(1, 40, 40)
    t = RandomResizedCrop(size=20, scale=(0.6, 1.0), ratio=(1.0, 1.0))
    for s in range(20):
        y = t(x, gen(s))
        assert y.shape == (1, 20, 20) and torch.allclose(y, torch.ones_like(y))
    with pytest.raises(ValueError, match="lower bound"):
        RandomResizedCrop(scale=(1.0, 0.6))


def test_rotation_bounded_angle():
    x = torch.zeros(1, 31, 31)
    x[0, 15, :] = 1.0  # a horizontal line through the centre
    y = RandomRotation(degrees=15)(x, gen(3))
    # rotated by at most 15 degrees: the line's end points move at most 15*tan(15°) ≈ 4 rows
    rows = y[0, :, 0].nonzero().flatten()
    assert len(rows) and (rows - 15).abs().max() <= 5
    assert not torch.equal(y, x)


def test_rescale_then_crop_fixed_size():
    x = img(3, 100)
    r = RandomRescale(scale=(0.1, 0.7))(x, gen(0))
    assert r.shape[0] == 3 and 10 <= r.shape[-1] <= 70
    c = RandomCrop(size=64)(r, gen(0))
    assert c.shape == (3, 64, 64)  # padded when smaller


def test_gamma_and_linear_ranges():
    x = torch.linspace(0, 1, 100).view(1, 10, 10)
    g = RandomGamma((2.0, 2.0))(x)
    assert torch.allclose(g, x ** 2)
    y = RandomLinear(a=(1.0, 1.0), b=0.2, clamp=False)(x, gen(0))
    shift = y - x
    assert float(shift.std()) < 1e-5 and 0 < abs(float(shift.mean())) <= 0.2 + 1e-6  # |b| <= 20%
    ys = [RandomLinear()(x * 0.5, gen(s)) for s in range(30)]
    assert all(0 <= float(v.min()) and float(v.max()) <= 1 for v in ys)


def test_energy_bands_sum_to_image_and_reference_energy_is_reached():
    x = img(1, 32, seed=4)
    bands, residual = energy_bands(x, [1.0, 2.0])
    assert torch.allclose(sum(bands) + residual, x, atol=1e-5)
    x = x * 0.3 + 0.35  # stays inside [0, 1]: no clamping effect
    own = band_energies(x, [1.0, 2.0])
    # reference = the image's own energies, zero spread: eq. 8 is the identity
    same = EnergyBandNormalize(sigmas=[1.0, 2.0], ref_mean=own.tolist(), ref_std=[0.0, 0.0])
    assert torch.allclose(same(x), x, atol=1e-5)
    # eq. 8 by hand: residual + sum_i e_ref_i / e_i * band_i
    ref = [0.05, 0.03]
    t = EnergyBandNormalize(sigmas=[1.0, 2.0], ref_mean=ref, ref_std=[0.0, 0.0])
    bands, residual = energy_bands(x, [1.0, 2.0])
    manual = residual + sum(r / float(e) * b for r, e, b in zip(ref, own, bands))
    assert torch.allclose(t(x), manual.clamp(0, 1), atol=1e-6)
    # a spread samples different reference energies per call, reproducibly per generator
    wide = EnergyBandNormalize(sigmas=[1.0, 2.0], ref_mean=ref, ref_std=[0.02, 0.01])
    assert torch.equal(wide(x, gen(1)), wide(x, gen(1)))
    assert not torch.equal(wide(x, gen(1)), wide(x, gen(2)))
    mean, std = reference_energies([img(1, 32, s) for s in range(5)], [1.0, 2.0])
    assert len(mean) == len(std) == 2 and all(v > 0 for v in std)


def test_medical_ssl_preset():
    t = preset("medical_ssl", size=24)
    y = t(img(1, 64), gen(0))
    assert y.shape == (1, 24, 24) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert torch.equal(y, t(img(1, 64), gen(0)))


def test_two_views_differ_and_are_reproducible():
    t = TwoViews(preset("scc", size=28))
    a1, a2 = t(img(), gen(5))
    b1, b2 = t(img(), gen(5))
    assert torch.equal(a1, b1) and torch.equal(a2, b2) and not torch.equal(a1, a2)


def test_yaml_composition(tmp_path):
    text = """
- {name: random_resized_crop, size: 16, scale: [0.6, 1.0]}
- name: random_apply
  p: 1.0
  transform: [{name: random_gamma, gamma: [2.0, 2.0]}]
- {name: normalize, mean: [0.5], std: [0.25]}
- repeat_channels
"""
    t = build_transform(text)
    y = t(img(1, 28), gen(0))
    assert y.shape == (3, 16, 16)
    path = tmp_path / "aug.yaml"
    path.write_text(text)
    assert torch.equal(build_transform(path)(img(1, 28), gen(0)), y)
    assert [type(s).__name__ for s in t.transforms] == [
        "RandomResizedCrop", "RandomApply", "Normalize", "RepeatChannels"]


# Parameters that build each registered transform (every entry must have one: see below).
EXAMPLES = {
    "to_tensor": {}, "resize": {"size": 16}, "random_resized_crop": {"size": 16},
    "random_rotation": {"degrees": 30}, "random_horizontal_flip": {}, "xrv_scale": {},
    "normalize": {}, "repeat_channels": {"n": 3}, "random_rescale": {"scale": [0.5, 1.5]},
    "energy_band_normalize": {}, "random_gamma": {}, "random_linear": {},
    "random_crop": {"size": 20}, "random_apply": {"transform": {"name": "random_gamma"}},
    "dce": {"weights": None},  # a dce.pt written by the fixture
    "tag": {}, "low_pass": {"d0": 6.0}, "poisson_noise": {"n0": 1e3}, "nlm_denoise": {},
    "rescale_crop": {"size": 20, "scale": [0.5, 0.9]}, "jigsaw": {"grid": 2, "tile_size": 10},
    "energy_reference_normalize": {"reference": None},  # a file written by the fixture
    "preset": {"preset": "medical_ssl", "size": 28},
}
# Steps whose output is not one (C, H, W) image: jigsaw returns its tiles (grid**2, C, t, t).
TILE_OUTPUTS = {"jigsaw": 4}


@pytest.fixture(scope="module")
def dce_weights(tmp_path_factory):
    from medxfer.methods.dce import DCEOptions, save_dce
    from medxfer.models import ShallowUNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dce") / "dce.pt"
    torch.save(save_dce(ShallowUNet(1, 1, 4, 2), DCEOptions(base_channels=4)), path)
    return str(path)


def test_every_transform_is_registered_with_its_metadata():
    assert set(list_transforms()) == set(EXAMPLES) and list_transforms() == sorted(EXAMPLES)
    for name in list_transforms():
        info = transform_info(name)
        assert info.name == name == info.cls.registry_name and issubclass(info.cls, Transform)


@pytest.fixture(scope="module")
def energy_reference_file(tmp_path_factory):
    from medxfer.data.energy_reference import compute_energy_reference, write_energy_reference

    images = [img(1, 28) * (0.5 + 0.1 * i) for i in range(4)]
    path = tmp_path_factory.mktemp("energy") / "reference.json"
    return str(write_energy_reference(compute_energy_reference(images), path))


@pytest.mark.parametrize("name", list_transforms())
def test_every_transform_is_seeded_and_random_only_when_registered_so(name, dce_weights,
                                                                       energy_reference_file):
    info = transform_info(name)
    params = {**EXAMPLES[name]}
    if name == "dce":
        params["weights"] = dce_weights
    if name == "energy_reference_normalize":
        params["reference"] = energy_reference_file
    t = build_transform([{"name": name, **params}])
    x = img(1, 28)
    y = t(x, gen(0))
    assert y.dtype == torch.float32 and y.ndim == TILE_OUTPUTS.get(name, 3)
    assert torch.isfinite(y).all()
    assert torch.equal(y, t(x, gen(0)))  # the same generator state, the same output
    others = [t(x, gen(s)) for s in range(1, 9)]
    assert any(not torch.equal(y, o) for o in others) == info.random


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="already registered"):
        register_transform("resize", random=False)(type("Again", (Transform,), {}))
    with pytest.raises(ValueError, match=r"unknown transform 'blur'; valid: dce, energy_band"):
        transform_info("blur")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(MedxferInputError, match=r"unknown transform 'blur'.*random_gamma"):
        build_transform([{"name": "blur"}])
    with pytest.raises(MedxferInputError, match=r"transform 'random_gamma'.*unexpected"):
        build_transform([{"name": "random_gamma", "gama": [1, 2]}])
    with pytest.raises(MedxferInputError, match="cannot read"):
        build_transform(str("missing.yaml"))
    assert {"xrv_scale", "energy_band_normalize", "random_crop"} <= set(list_transforms())


def test_to_tensor_from_numpy():
    from medxfer.data.transforms import ToTensor

    arr = np.full((5, 6, 3), 255, np.uint8)
    y = ToTensor()(arr)
    assert y.shape == (3, 5, 6) and float(y.max()) == 1.0


def test_dataset_with_transform(tmp_path):
    from medxfer.data.medmnist import MedMNISTDataset
    from medxfer.data.synth import synthesize

    synthesize(tmp_path, n_per_class=2, modalities=["synthpneumonia"])
    ds = MedMNISTDataset(tmp_path, "synthpneumonia", transform=preset("scc", size=32))
    x, _ = ds[0]
    assert x.shape == (1, 32, 32) and float(x.abs().max()) <= 1024
