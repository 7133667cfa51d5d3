"""One dataset interface: .npz and CXR manifests give the same rows, items and splits; the
old per-split loader's numbers are kept; subsampling happens only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxfer.config import DataConfig
from medxfer.data.cxr import read_image
from medxfer.data.medmnist import MedMNISTDataset, load_split, load_target
from medxfer.data.protocol import own_splits, select_cell
from medxfer.data.sources import load_source, patient_codes
from medxfer.data.synth_studies import synthesize_cxr_manifest
from medxfer.errors import MedxferInputError


@pytest.fixture(scope="module")
def cxr(tmp_path_factory):
    root = tmp_path_factory.mktemp("cxr")
    return synthesize_cxr_manifest(root, "corpus", patients=12, size=32, seed=1)


def test_npz_rows_are_the_three_splits_in_file_order(small_synth):
    src = load_source(DataConfig(root=str(small_synth), flag="synthchest"))
    parts = [load_split(small_synth, "synthchest", s) for s in ("train", "val", "test")]
    assert np.array_equal(src.labels, np.concatenate([p.labels for p in parts]))
    assert np.array_equal(src.patients, np.concatenate([p.extras["patients"] for p in parts]))
    assert src.splits.tolist() == sum(([s] * len(p.labels) for s, p in
                                       zip(("train", "val", "test"), parts, strict=True)), [])
    val = MedMNISTDataset(small_synth, "synthchest", "val")
    ds = src.dataset(src.rows("val"))
    for i in (0, len(val) - 1):
        assert torch.equal(ds[i][0], val[i][0]) and torch.equal(ds[i][1], val[i][1])


def test_default_selection_is_all_data_and_counts_equal_the_old_loader(small_synth):
    d = DataConfig(root=str(small_synth), flag="synthpath")
    sel = select_cell(load_source(d), d, None, None)
    n = {s: len(load_split(small_synth, "synthpath", s).labels) for s in ("train", "val", "test")}
    assert (len(sel.train), len(sel.val), len(sel.test)) == (n["train"], n["val"], n["test"])
    assert np.array_equal(sel.labelled, sel.train)
    # explicit counts pick exactly the images load_target picked (same seeds)
    d = DataConfig(root=str(small_synth), flag="synthpath", n_train_per_class=3,
                   n_val_per_class=2, seed=5)
    sel = select_cell(load_source(d), d, None, None)
    old = load_target(small_synth, "synthpath", n_train_per_class=3, n_val_per_class=2, seed=5)
    assert np.array_equal(sel.train, old["train"].indices)
    assert np.array_equal(sel.val - n["train"], old["val"].indices)
    assert np.array_equal(sel.test - n["train"] - n["val"], old["test"].indices)


def test_subsample_is_a_named_option():
    assert DataConfig(root="r", flag="f").per_class == (None, None)
    assert DataConfig(root="r", flag="f", subsample="thesis").per_class == (100, 25)
    with pytest.raises(ValueError, match="subsample: thesis means 100 train / 25 val"):
        DataConfig(root="r", flag="f", subsample="thesis", n_train_per_class=50)
    with pytest.raises(ValueError, match="root \\+ flag .* or manifest"):
        DataConfig(root="r")


def test_manifest_source_dicom_and_png(cxr):
    d = DataConfig(manifest=str(cxr), size=28)
    src = load_source(d)
    assert d.flag == "corpus" and src.name == "corpus"
    assert src.info.multilabel and src.info.n_classes == 14 and src.labels.shape[1] == 14
    assert src.splits is None and src.sites is not None
    suffixes = {p.suffix for p in src._open().data.paths}
    assert suffixes == {".png", ".dcm"}
    # patient codes: integers, equal exactly where the CSV's ids are equal
    import csv

    ids = np.array([r["patient_id"] for r in csv.DictReader(open(cxr))])
    assert src.patients.dtype == np.int64
    assert np.array_equal(src.patients[:, None] == src.patients[None],
                          ids[:, None] == ids[None])
    x, y = src.dataset([0, 1])[1]
    assert x.shape == (1, 28, 28) and y.shape == (14,) and y.dtype == torch.float32
    # by patient: the own split of a manifest without a split column keeps patients apart
    train, val, test = own_splits(src, d)
    assert not set(src.patients[test]) & set(src.patients[np.r_[train, val]])
    assert not set(src.patients[val]) & set(src.patients[train])
    assert sorted(np.r_[train, val, test].tolist()) == list(range(len(src)))


def test_dicom_and_png_decode_to_the_same_values(tmp_path):
    import cv2

    from medxfer.data.synth_studies import _write_dicom

    img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    _write_dicom(tmp_path / "a.dcm", img, "p", "k")
    np.testing.assert_allclose(read_image(tmp_path / "a.dcm"), img / 255.0, atol=1e-6)
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), img / 255.0, atol=1e-6)


def test_manifest_columns_named_in_the_config(cxr, tmp_path):
    text = cxr.read_text().replace("patient_id", "subject", 1)
    moved = tmp_path / "m.csv"
    moved.write_text(text)
    src = load_source(DataConfig(manifest=str(moved), image_root=str(cxr.parent),
                                 patient_column="subject"))
    assert src.patients is not None and src.info.n_classes == 14  # not taken for a label
    with pytest.raises(MedxferInputError, match="no patient column 'patient'") as e:
        load_source(DataConfig(manifest=str(moved), image_root=str(cxr.parent),
                               patient_column="patient"))
    assert str(moved) in str(e.value)


def test_patient_codes():
    assert patient_codes(None) is None
    assert patient_codes(np.array([7, 3])).tolist() == [7, 3]
    assert patient_codes(np.array(["b", "a", "b"])).tolist() == [1, 0, 1]
