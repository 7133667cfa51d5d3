"""cltci's seed-003 recipe: patient-grouped batches, momentum 0.999, and missing patient ids
refused (exit 2 from `medxfer train`, naming the field) unless SimCLR-style positives."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import yaml
from train_helpers import make_config

from medxfer.losses import CLTCILoss
from medxfer.methods.cltci import CLTCIOptions
from medxfer.train.launcher import run_local


def test_every_training_batch_holds_two_images_of_a_patient(synth_root, tmp_path, monkeypatch):
    batches = []
    real = CLTCILoss.forward

    def forward(self, features, patients):
        if torch.is_grad_enabled():  # training batches (validation is not grouped)
            batches.append(patients.tolist())
        return real(self, features, patients)

    monkeypatch.setattr(CLTCILoss, "forward", forward)
    cfg = make_config(synth_root, "cltci", epochs=2, method_config={"images_per_patient": 2})
    run_local(cfg, storage_dir=tmp_path)
    assert len(batches) >= 4
    for patients in batches:
        assert np.bincount(patients).max() >= 2, patients
    # Uniform shuffling, for contrast: the same data rarely gives every batch a pair.
    assert CLTCIOptions().momentum == 0.999 and CLTCIOptions().patient_batches


def _without_patients(src: Path, dst: Path) -> Path:
    """A copy of synthpneumonia whose .npz has no patient ids."""
    dst.mkdir()
    with np.load(src / "synthpneumonia.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.endswith("_patients")}
    np.savez(dst / "synthpneumonia.npz", **arrays)
    shutil.copy(src / "synthpneumonia.json", dst / "synthpneumonia.json")
    return dst


def test_train_without_patient_ids_exits_2_naming_the_field(synth_root, tmp_path, capsys):
    from medxfer.cli import main

    root = _without_patients(Path(synth_root), tmp_path / "data")
    exp = tmp_path / "cltci.yaml"
    exp.write_text(yaml.safe_dump({
        "method": "cltci", "method_config": {"variant": "moco", "queue_size": 8},
        "data": {"root": str(root), "flag": "synthpneumonia", "n_train_per_class": None,
                 "n_val_per_class": None},
        "model": {"backbone": "tiny_cnn"}, "train": {"epochs": 1, "batch_size": 8}}))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert main(["train", str(exp), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "field 'train_patients'" in err and "synthpneumonia.npz" in err
    assert "positives: simclr" in err
    # SimCLR-style positives need no ids: the same data trains.
    assert main(["train", str(exp), "--tracking-uri", uri,
                 "--set", "method_config.positives=simclr"]) == 0
