"""Multi-crop views, rescale-then-crop, jigsaw tiles, YAML presets and the energy reference."""

import json

import pytest
import torch
from typer.testing import CliRunner

from medxfer.cli import app, main
from medxfer.data import build_transform
from medxfer.data.multicrop import MultiCrop, RescaleCrop, seed001_multicrop
from medxfer.errors import MedxferInputError


def test_multicrop_counts_sizes_and_assignment_views():
    g = torch.Generator().manual_seed(0)
    mc = seed001_multicrop(32, 16, n_crops=(2, 4), transform=[{"name": "random_gamma"}])
    views = mc(torch.rand(1, 32, 32), g)
    assert [v.shape[-1] for v in views] == [32, 32, 16, 16, 16, 16] == mc.view_sizes
    assert mc.crops_for_assign == [0, 1] and mc.n_views == 6
    swav = MultiCrop((2, 4), (32, 16), ((0.5, 1.0), (0.1, 0.3)))
    assert ([v.shape for v in swav(torch.rand(3, 40, 40), g)]
            == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 4)
    with pytest.raises(ValueError, match="crops_for_assign"):
        MultiCrop((2, 4), (32, 16), ((0.5, 1.0), (0.1, 0.3)), crops_for_assign=[6])


def test_rescale_happens_before_the_crop():
    # A 32 px ramp standing for a 64 px original, rescaled by exactly 0.5: the crop is the
    # whole image at full size (no padding, no zoom); by 0.25: the 16 px image, padded.
    x = torch.linspace(0, 1, 32).repeat(32, 1)[None]
    g = torch.Generator().manual_seed(0)
    same = RescaleCrop(32, (0.5, 0.5), reference_size=64)(x, g)
    assert torch.allclose(same, x, atol=1e-5)
    small = RescaleCrop(32, (0.25, 0.25), reference_size=64)(x, g)
    assert float((small > 0).float().mean()) == pytest.approx(0.25, abs=0.04)
    zoom = RescaleCrop(8, (1.0, 1.0), reference_size=64)(x, g)  # 2x zoom, 8 px window
    assert float(zoom[0, 0, -1] - zoom[0, 0, 0]) == pytest.approx(7 / 62, abs=0.03)


def test_jigsaw_tiles_come_from_distinct_cells():
    x = torch.arange(9, dtype=torch.float32).view(3, 3).repeat_interleave(10, 0) \
        .repeat_interleave(10, 1)[None]
    tiles = build_transform([{"name": "jigsaw"}])(x, torch.Generator().manual_seed(0))
    assert tiles.shape == (9, 1, 8, 8)
    values = [float(t.unique()) for t in tiles]  # each tile inside one cell
    assert sorted(values) == list(range(9)) and values != list(range(9))


def test_presets_are_nameable_from_yaml(tmp_path):
    t = build_transform("- {name: preset, preset: medical_ssl, size: 32}")
    y = t(torch.rand(1, 32, 32), torch.Generator().manual_seed(0))
    assert y.shape == (1, 32, 32)
    steps = [s.registry_name for s in t.transforms[0].pipeline.transforms]
    assert steps[-1] == "rescale_crop" and steps[0] == "energy_band_normalize"
    assert build_transform([{"name": "preset", "preset": "scc", "size": 32}])(
        torch.rand(1, 40, 40)).shape == (1, 32, 32)
    with pytest.raises(MedxferInputError, match="unknown preset 'nope'"):
        build_transform([{"name": "preset", "preset": "nope"}])


def test_energy_reference_cli_file_and_transform(small_synth, tmp_path, capsys):
    out = tmp_path / "ref.json"
    assert main(["data", "energy-reference", "--root", str(small_synth), "--flag", "synthchest",
                 "--n-images", "20", "--sigmas", "1,2", "--out", str(out)]) == 0
    ref = json.loads(out.read_text())
    assert ref["n_images"] == 20 and len(ref["mean"]) == len(ref["std"]) == 2
    assert all(s > 0 for s in ref["std"])
    t = build_transform([{"name": "preset", "preset": "medical_ssl", "size": 28,
                          "energy_reference": str(out)}])
    energy = t.transforms[0].pipeline.transforms[0]
    assert energy.ref_mean == pytest.approx(ref["mean"]) and energy.sigmas == [1.0, 2.0]
    assert t(torch.rand(1, 28, 28)).shape == (1, 28, 28)
    with pytest.raises(MedxferInputError, match="field 'size'"):
        energy(torch.rand(1, 32, 32))
    assert main(["data", "energy-reference", "--root", str(small_synth), "--flag", "synthchest",
                 "--n-images", "1", "--out", str(tmp_path / "x.json")]) == 2
    assert main(["data", "energy-reference", "--out", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MedxferInputError, match="bad.json"):
        build_transform([{"name": "energy_reference_normalize",
                          "reference": str(tmp_path / "bad.json")}])
    help_text = CliRunner().invoke(app, ["data", "energy-reference", "--help"]).output
    assert "Example: medxfer data energy-reference" in help_text
