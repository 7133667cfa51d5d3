"""CXR loaders on files written in the real formats: PNG (8/16-bit), JPEG, DICOM, CSV manifests."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from medxfer.data.cxr import (CHEXPERT_LABELS, CXR14_LABELS, CXRDataset, read_dicom,
                              read_image, read_manifest, scan_folder)
from medxfer.data.splits import ood_split
from medxfer.errors import MedxferInputError


# ---------------------------------------------------------------------------- file writers
def write_png8(path, arr):
    Image.fromarray(np.asarray(arr, np.uint8), mode="L").save(path)
    return path


def write_png16(path, arr):
    Image.fromarray(np.asarray(arr, np.uint16)).save(path)
    return path


def write_dicom(path, stored, *, photometric="MONOCHROME2", slope=None, intercept=None,
                window=None, bits=12, signed=False):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientID = "p1"
    stored = np.asarray(stored, np.int16 if signed else np.uint16)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = stored.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------- pixels
def test_png8_png16_jpeg_values(tmp_path):
    a8 = np.array([[0, 51], [204, 255]], np.uint8)
    x = read_image(write_png8(tmp_path / "a.png", a8))
    assert x.dtype == np.float32 and np.allclose(x, a8 / 255.0)
    a16 = np.array([[0, 1000], [40000, 65535]], np.uint16)  # beyond 8 bits: must not be /255
    x16 = read_image(write_png16(tmp_path / "b.png", a16))
    assert np.allclose(x16, a16 / 65535.0, atol=1e-6)
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "c.jpg", quality=95)
    xj = read_image(tmp_path / "c.jpg")
    assert abs(float(xj.mean()) - 200 / 255) < 0.02


def test_dicom_monochrome2_rescale_and_bits_range(tmp_path):
    stored = np.array([[0, 1024], [2048, 4095]])
    # no window: the 12-bit range through slope 2, intercept -1024 is [-1024, 7166]
    x = read_dicom(write_dicom(tmp_path / "m2.dcm", stored, slope=2, intercept=-1024))
    hu = stored * 2.0 - 1024
    assert np.allclose(x, (hu - (-1024)) / (7166 - (-1024)), atol=1e-6)
    assert x[0, 0] == 0.0 and x[1, 1] == 1.0


def test_dicom_window_is_applied_and_clipped(tmp_path):
    stored = np.array([[0, 400], [600, 1000]])
    path = write_dicom(tmp_path / "w.dcm", stored, slope=1, intercept=0, window=(500, 200))
    x = read_dicom(path)  # window [400, 600]
    assert np.allclose(x, [[0.0, 0.0], [1.0, 1.0]])
    x2 = read_image(tmp_path / "w.dcm")  # same through the generic reader
    assert np.allclose(x, x2)
    mid = write_dicom(tmp_path / "mid.dcm", np.array([[450, 500]]), window=(500, 200))
    assert np.allclose(read_dicom(mid), [[0.25, 0.5]])
    assert np.allclose(read_dicom(mid, window=False), np.array([[450, 500]]) / 4095)


def test_dicom_monochrome1_is_inverted(tmp_path):
    stored = np.array([[0, 4095], [1000, 3000]])
    x1 = read_dicom(write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1"))
    x2 = read_dicom(write_dicom(tmp_path / "m2.dcm", stored, photometric="MONOCHROME2"))
    assert np.allclose(x1, 1.0 - x2)
    assert x1[0, 0] == 1.0 and x1[0, 1] == 0.0  # stored 0 is white in MONOCHROME1


def test_dicom_without_suffix_is_detected(tmp_path):
    path = write_dicom(tmp_path / "IM0001", np.array([[0, 4095]]))
    assert np.allclose(read_image(path), [[0.0, 1.0]])


# ---------------------------------------------------------------------------- folders
def _folder(tmp_path):
    root = tmp_path / "cxr"
    for name, v in (("pneumonia", 200), ("normal", 50)):
        (root / name).mkdir(parents=True)
        for k in range(3):
            write_png8(root / name / f"{k}.png", np.full((20, 30), v))
    (root / "normal" / "notes.txt").write_text("ignored")
    write_dicom(root / "normal" / "3.dcm", np.full((16, 16), 4095))
    return root


def test_image_folder_sorted_classes_and_items(tmp_path):
    root = _folder(tmp_path)
    m = scan_folder(root)
    assert m.label_names == ("normal", "pneumonia")
    assert np.bincount(m.labels).tolist() == [4, 3]  # the .txt is not an image
    ds = CXRDataset(m, size=8)
    x, y = ds[len(ds) - 1]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert y.dtype == torch.long and int(y) == 1
    assert abs(float(x.mean()) - 200 / 255) < 1e-5
    xs = [ds[i][0] for i in range(len(ds))]
    assert any(abs(float(t.mean()) - 1.0) < 1e-6 for t in xs)  # the DICOM, white
    rgb = CXRDataset.from_folder(root, size=(6, 10), channels=3)
    assert rgb[0][0].shape == (3, 6, 10)
    assert torch.equal(rgb[0][0][0], rgb[0][0][2])


def test_rgb_image_to_grey_uses_luma(tmp_path):
    root = tmp_path / "f" / "a"
    root.mkdir(parents=True)
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # pure red
    Image.fromarray(img, mode="RGB").save(root / "r.png")
    ds = CXRDataset.from_folder(tmp_path / "f", size=None)
    assert np.isclose(float(ds[0][0].mean()), 0.299, atol=1e-3)
    assert CXRDataset.from_folder(tmp_path / "f", size=None, channels=3)[0][0][0].min() == 1.0


def test_empty_folder_errors(tmp_path):
    with pytest.raises(MedxferInputError, match="no class sub-folders"):
        scan_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(MedxferInputError, match="no images"):
        scan_folder(tmp_path)


# ---------------------------------------------------------------------------- manifests
def _images(tmp_path, n, value=128):
    d = tmp_path / "img"
    d.mkdir(exist_ok=True)
    return [write_png8(d / f"{i}.png", np.full((10, 10), value)).name for i in range(n)]


def test_single_label_manifest_with_metadata(tmp_path):
    names = _images(tmp_path, 4)
    (tmp_path / "m.csv").write_text(
        "path,label,patient_id,site,age\n"
        f"img/{names[0]},pneumonia,p1,A,3.5\n"
        f"img/{names[1]},normal,p1,A,\n"
        f"{tmp_path / 'img' / names[2]},pneumonia,p2,B,7\n"   # absolute path
        f"img/{names[3]},normal,p3,B,12\n")
    m = read_manifest(tmp_path / "m.csv")
    assert m.label_names == ("normal", "pneumonia") and not m.multilabel
    assert m.labels.tolist() == [1, 0, 1, 0]
    assert m.patients.tolist() == ["p1", "p1", "p2", "p3"]
    assert m.sites.tolist() == ["A", "A", "B", "B"]
    assert m.ages[0] == 3.5 and np.isnan(m.ages[1])
    assert m.paths[2].is_absolute() and m.paths[0] == tmp_path / "img" / names[0]
    ds = CXRDataset(m, size=4)
    assert int(ds[0][1]) == 1 and ds.info.task == "binary-class"
    tr, te = ood_split(ds.labels, 0.5, groups=ds.patients, seed=0)
    assert not set(ds.patients[tr]) & set(ds.patients[te])


def test_integer_labels_with_given_names(tmp_path):
    names = _images(tmp_path, 3)
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(
        f"img/{n},{k}\n" for n, k in zip(names, (0, 2, 1))))
    m = read_manifest(tmp_path / "m.csv", label_names=["a", "b", "c"])
    assert m.labels.tolist() == [0, 2, 1] and m.label_names == ("a", "b", "c")


def test_pipe_separated_multilabel_manifest(tmp_path):
    names = _images(tmp_path, 3)
    (tmp_path / "m.csv").write_text(
        "path,labels,patient_id\n"
        f"img/{names[0]},Effusion|Mass,p1\n"
        f"img/{names[1]},No Finding,p2\n"
        f"img/{names[2]},Hernia,p3\n")
    m = read_manifest(tmp_path / "m.csv", label_names="cxr14")
    assert m.multilabel and m.labels.shape == (3, 14) and m.label_names == CXR14_LABELS
    assert np.flatnonzero(m.labels[0]).tolist() == [CXR14_LABELS.index("Effusion"),
                                                    CXR14_LABELS.index("Mass")]
    assert m.labels[1].sum() == 0 and m.labels[2, 13] == 1
    ds = CXRDataset(m, size=4)
    y = ds[0][1]
    assert y.dtype == torch.float32 and y.shape == (14,) and float(y.sum()) == 2.0
    assert ds.info.multilabel
    inferred = read_manifest(tmp_path / "m.csv")  # names from the data, sorted
    assert inferred.label_names == ("Effusion", "Hernia", "Mass")


def test_onehot_manifest_and_uncertain_policy(tmp_path):
    names = _images(tmp_path, 2)
    cols = ",".join(CHEXPERT_LABELS)
    row0 = ["1"] + ["0"] * 13
    row1 = ["0", "", "1.0"] + ["-1"] + ["0"] * 10
    (tmp_path / "m.csv").write_text(f"path,{cols},site\n" f"img/{names[0]},{','.join(row0)},X\n"
                                    f"img/{names[1]},{','.join(row1)},Y\n")
    with pytest.raises(MedxferInputError) as e:
        read_manifest(tmp_path / "m.csv")
    assert "line 3" in str(e.value) and "'Lung Opacity'" in str(e.value)
    assert "uncertain" in str(e.value)
    m = read_manifest(tmp_path / "m.csv", uncertain="one")
    assert m.label_names == CHEXPERT_LABELS  # site is not a label
    assert m.labels[0].tolist() == [1] + [0] * 13
    assert m.labels[1, :4].tolist() == [0, 0, 1, 1]
    assert read_manifest(tmp_path / "m.csv", uncertain="zero").labels[1, 3] == 0


# ---------------------------------------------------------------------------- bad input
def test_missing_file_raise_names_csv_line_path_or_skip(tmp_path, caplog):
    names = _images(tmp_path, 2)
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label\nimg/{names[0]},a\nimg/gone.png,b\nimg/{names[1]},b\n")
    with pytest.raises(MedxferInputError) as e:
        read_manifest(csv)
    msg = str(e.value)
    assert str(csv) in msg and "line 3" in msg and "gone.png" in msg
    with caplog.at_level(logging.WARNING):
        m = read_manifest(csv, on_missing="skip")
    assert len(m) == 2 and m.labels.tolist() == [0, 1] and m.lines.tolist() == [2, 4]
    assert len(m.skipped) == 1 and m.skipped[0][0].endswith("gone.png")
    assert "gone.png" in caplog.text
    assert CXRDataset(m).n_skipped == 1


def test_wrong_columns_name_csv_and_expected(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("file,label\na.png,x\n")
    with pytest.raises(MedxferInputError) as e:
        read_manifest(csv)
    assert str(csv) in str(e.value) and "'path'" in str(e.value) and "'labels'" in str(e.value)
    csv.write_text("path,Atelectasis\na.png,1\n")
    with pytest.raises(MedxferInputError, match=r"label columns \['Cardiomegaly'"):
        read_manifest(csv, label_names="cxr14")
    csv.write_text("path,patient_id\na.png,p\n")
    with pytest.raises(MedxferInputError, match="no label columns"):
        read_manifest(csv)


def test_label_out_of_range_and_unknown_name(tmp_path):
    names = _images(tmp_path, 2)
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label\nimg/{names[0]},0\nimg/{names[1]},3\n")
    with pytest.raises(MedxferInputError) as e:
        read_manifest(csv, label_names=["a", "b"])
    assert str(csv) in str(e.value) and "line 3" in str(e.value)
    assert "'label'" in str(e.value) and "out of range [0, 2)" in str(e.value)
    csv.write_text(f"path,label\nimg/{names[0]},-1\n")
    with pytest.raises(MedxferInputError, match="out of range"):
        read_manifest(csv)
    csv.write_text(f"path,labels\nimg/{names[0]},Mass\nimg/{names[1]},Effusion|Masss\n")
    with pytest.raises(MedxferInputError) as e:
        read_manifest(csv, label_names="cxr14")
    assert "line 3" in str(e.value) and "'labels'" in str(e.value) and "'Masss'" in str(e.value)
    csv.write_text(f"path,label\nimg/{names[0]},cat\n")
    with pytest.raises(MedxferInputError, match="unknown label 'cat'"):
        read_manifest(csv, label_names=["a", "b"])


def test_bad_metadata_values(tmp_path):
    names = _images(tmp_path, 1)
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label,age\nimg/{names[0]},a,old\n")
    with pytest.raises(MedxferInputError, match="line 2.*'age'"):
        read_manifest(csv)
    csv.write_text(f"path,label,patient_id\nimg/{names[0]},a,\n")
    with pytest.raises(MedxferInputError, match="'patient_id'.*empty"):
        read_manifest(csv)
    with pytest.raises(MedxferInputError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def _with_corrupt(tmp_path):
    names = _images(tmp_path, 3, value=100)
    bad = tmp_path / "img" / "bad.png"
    good = (tmp_path / "img" / names[0]).read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated PNG
    (tmp_path / "img" / "junk.dcm").write_bytes(b"not a dicom at all")
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label\nimg/{names[0]},a\nimg/bad.png,b\nimg/junk.dcm,b\n"
                   f"img/{names[1]},b\n")
    return csv, bad


def test_corrupt_image_raise_names_the_path(tmp_path):
    csv, bad = _with_corrupt(tmp_path)
    ds = CXRDataset.from_csv(csv, on_error="raise", size=4)
    assert torch.allclose(ds[0][0], torch.full((1, 4, 4), 100 / 255))
    with pytest.raises(MedxferInputError) as e:
        ds[1]
    assert str(bad) in str(e.value) and "unreadable image" in str(e.value)
    with pytest.raises(MedxferInputError, match="junk.dcm"):
        ds[2]  # a broken DICOM, found by its suffix
    with pytest.raises(MedxferInputError, match="bad.png"):  # the first bad file, up front
        CXRDataset.from_csv(csv, on_error="raise", verify=True)


def test_corrupt_image_skip_counts_and_lists(tmp_path, caplog):
    csv, bad = _with_corrupt(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = CXRDataset.from_csv(csv, on_error="skip", verify=True, size=4)
    assert len(ds) == 2 and ds.n_skipped == 2
    assert sorted(ds.skipped) == sorted([str(bad), str(tmp_path / "img" / "junk.dcm")])
    assert ds.labels.tolist() == [0, 1]  # labels stay aligned with the kept images
    assert "bad.png" in caplog.text
    lazy = CXRDataset.from_csv(csv, on_error="skip", size=4)
    assert len(lazy) == 4
    x, y = lazy[1]  # bad.png and junk.dcm are replaced by the next readable image
    assert int(y) == 1 and lazy.n_skipped == 2 and str(bad) in lazy.skipped


def test_dataset_options_validated(tmp_path):
    m = scan_folder(_folder(tmp_path))
    with pytest.raises(MedxferInputError, match="on_error"):
        CXRDataset(m, on_error="ignore")
    with pytest.raises(MedxferInputError, match="channels"):
        CXRDataset(m, channels=2)
    with pytest.raises(MedxferInputError, match="indices out of range"):
        CXRDataset(m, indices=[0, 99])
    sub = CXRDataset(m, indices=[4, 5], size=4)
    assert sub.labels.tolist() == [1, 1] and len(sub) == 2


# ---------------------------------------------------------------------------- CLI
def test_cli_check_counts_and_bad_files(tmp_path, capsys):
    from typer.testing import CliRunner

    from medxfer.cli import app, main

    names = _images(tmp_path, 3)
    csv = tmp_path / "m.csv"
    csv.write_text("path,labels,patient_id,site\n"
                   f"img/{names[0]},Mass|Effusion,p1,A\n"
                   f"img/{names[1]},No Finding,p1,A\n"
                   f"img/{names[2]},Mass,p2,B\n")
    assert main(["data", "check", str(csv), "--labels", "cxr14"]) == 0
    out = capsys.readouterr().out
    assert "3 images listed, 3 found, 14 labels (multi-label)" in out
    assert [ln.split() for ln in out.splitlines() if ln.strip().startswith("Mass")] == \
        [["Mass", "2"]]
    assert "patients: 2" in out and "ok: no bad files" in out
    (tmp_path / "img" / names[2]).write_bytes(b"garbage")
    with open(csv, "a") as fh:
        fh.write("img/gone.png,Mass,p3,B\n")
    assert main(["data", "check", str(csv)]) == 2
    cap = capsys.readouterr()
    assert "bad files: 2" in cap.out and "gone.png" in cap.out and names[2] in cap.out
    assert "2 missing or unreadable" in cap.err
    csv.write_text("file,label\nx.png,a\n")
    assert main(["data", "check", str(csv)]) == 2
    assert "'path'" in capsys.readouterr().err
    help_ = CliRunner().invoke(app, ["data", "check", "--help"]).output
    assert "Example: medxfer data check" in help_
