"""Methods on a chest X-ray manifest (CSV + DICOM and PNG images, 14 labels, patient ids, sites)
through the same dataset interface as .npz: supcon contrasts multi-label positives and probes
14 labels; cltci's positives are the manifest's patients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medxfer.data.synth_studies import synthesize_cxr_manifest
from medxfer.methods.experiment import parse_experiment
from medxfer.train.launcher import run_local


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return synthesize_cxr_manifest(tmp_path_factory.mktemp("cxr"), "corpus", patients=14,
                                   size=32, seed=0)


def _config(csv, method: str, method_config: dict):
    return parse_experiment({
        "method": method, "method_config": {"proj_hidden_dim": 32, "proj_out_dim": 16,
                                            **method_config},
        "data": {"manifest": str(csv), "size": 28}, "model": {"backbone": "tiny_cnn"},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.05, "scheduler": "none"}})


def test_supcon_trains_multilabel_on_dicom_and_png(manifest, tmp_path):
    from medxfer.methods.common import load_datasets

    cfg = _config(manifest, "supcon", {"probe_epochs": 3})
    data = load_datasets(cfg)
    paths = [data.train.source._open().data.paths[r] for r in data.train.rows]
    assert {p.suffix for p in paths} == {".dcm", ".png"}  # both formats in training
    assert data.info.multilabel and data.train[0][1].shape == (14,)
    session = run_local(cfg, storage_dir=tmp_path)
    epochs, final = session.history[:-1], session.history[-1]
    assert [h["epoch"] for h in epochs] == [1, 2] and final["selected_epoch"] in (1, 2)
    assert final["n_train"] == len(data.train)
    for key in ("train_loss", "val_loss", "val_auc", "test_auc", "probe_test_loss"):
        assert math.isfinite(final[key]), key
    assert (session.checkpoints and
            (tmp_path / session.checkpoints[-1].split("/")[-1] / "encoder.pt").is_file())


@pytest.mark.parametrize("variant", ["simclr", "moco"])
def test_cltci_positives_are_the_manifests_patients(manifest, tmp_path, variant):
    import csv

    from medxfer.data import TwoViews
    from medxfer.methods.contrastive import pipeline, view_data

    cfg = _config(manifest, "cltci", {"variant": variant, "queue_size": 16})
    two = view_data(cfg, TwoViews(pipeline(cfg)))
    ids = np.array([r["patient_id"] for r in csv.DictReader(open(manifest))])[two.train.rows]
    from medxfer.methods.common import WithPatients

    codes = WithPatients(two.train).patients
    assert (codes >= 0).all()
    assert np.array_equal(codes[:, None] == codes[None], ids[:, None] == ids[None])
    assert np.bincount(np.unique(codes, return_inverse=True)[1]).max() >= 2
    (v1, v2), y, patient = WithPatients(two.train)[0]
    assert v1.shape == v2.shape == (1, 28, 28) and int(patient) == codes[0]
    session = run_local(cfg, storage_dir=tmp_path)
    final = session.history[-1]
    assert math.isfinite(final["train_loss"]) and math.isfinite(final["val_loss"])
    assert final["n_train"] == len(two.train)


def test_cltci_on_a_manifest_without_patient_ids_names_the_column(manifest, tmp_path):
    import csv

    from medxfer.errors import MedxferInputError

    rows = list(csv.DictReader(open(manifest)))
    bare = tmp_path / "no_patients.csv"
    with open(bare, "w", newline="") as f:
        w = csv.DictWriter(f, [k for k in rows[0] if k != "patient_id"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    cfg = _config(bare, "cltci", {"variant": "moco", "queue_size": 16})
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"image_root": str(manifest.parent)})})
    with pytest.raises(MedxferInputError, match="patient_id") as err:
        run_local(cfg, storage_dir=tmp_path / "run")
    assert str(bare) in str(err.value)
