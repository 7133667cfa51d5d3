"""``medxfer data synth``: writes files, bad input exits 2, help ends with an example."""

from __future__ import annotations

from typer.testing import CliRunner

from medxfer.cli import app, main


def test_synth_writes_files(tmp_path, capsys):
    rc = main(["data", "synth", "--out", str(tmp_path), "--n-per-class", "2",
               "--modalities", "synthoct,synthblood", "--seed", "1"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["synthblood.npz", "synthoct.npz"]
    assert (tmp_path / "synthoct.json").is_file()


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--modalities", "nope"]) == 2
    assert "unknown modalities ['nope']" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path), "--size", "30"]) == 2
    assert main(["data", "synth"]) == 2  # --out missing


def test_help_ends_with_example():
    out = CliRunner().invoke(app, ["data", "synth", "--help"]).output
    assert "Example: medxfer data synth --out" in out
    listing = CliRunner().invoke(app, ["data", "synth", "--list"]).output
    assert "synthchest" in listing and "multi-label" in listing


def test_synth_lesion_boxes_and_attributes(tmp_path):
    from medxfer.data.medmnist import load_split

    rc = main(["data", "synth", "--out", str(tmp_path), "--n-per-class", "3",
               "--modalities", "synthlesion,synthoct", "--attributes"])
    assert rc == 0
    assert (tmp_path / "synthlesion_boxes.csv").is_file()
    assert not (tmp_path / "synthoct_boxes.csv").exists()
    assert set(load_split(tmp_path, "synthoct", "val").extras) >= {"sex", "age_group"}
