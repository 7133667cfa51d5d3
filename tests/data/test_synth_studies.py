"""Synthetic data for studies: shifted hospitals of one modality, a CXR manifest with DICOM and
PNG images; the modalities `synthesize` writes stay byte for byte as they were."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from medxfer.data.cxr import CXR14_LABELS, read_manifest
from medxfer.data.medmnist import dataset_info, load_split
from medxfer.data.synth import synthesize
from medxfer.data.synth_studies import (acquisition_shift, synthesize_cxr_manifest,
                                        synthesize_hospitals)
from medxfer.errors import MedxferInputError

#: sha256 of synthpneumonia's arrays (n_per_class 4, seed 0), written by `synthesize` before the
#: study generators existed (main at 9a7b38b).
PNEUMONIA_DIGEST = "592ebb0e364c08f514d258ad8b663fec16833496fc6483d0d95cbbaccb50b097"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hospitals_share_the_task_and_shift_more_with_k(tmp_path):
    synthesize(tmp_path, n_per_class=8, modalities=["synthpneumonia"])
    before = _digest(tmp_path / "synthpneumonia.npz")
    paths = synthesize_hospitals(tmp_path, "synthpneumonia", hospitals=2, shift=0.6,
                                 n_per_class=8)
    assert [p.name for p in paths] == ["synthpneumonia_h1.npz", "synthpneumonia_h2.npz"]
    assert _digest(tmp_path / "synthpneumonia.npz") == before  # the source is untouched
    base = dataset_info("synthpneumonia", tmp_path)
    means = [load_split(tmp_path, "synthpneumonia", "train").images.mean()]
    for k in (1, 2):
        info = dataset_info(f"synthpneumonia_h{k}", tmp_path)
        assert (info.task, info.labels) == (base.task, base.labels)
        assert info.extra["hospital"] == k and info.extra["of"] == "synthpneumonia"
        split = load_split(tmp_path, f"synthpneumonia_h{k}", "train")
        assert np.bincount(split.labels[:, 0]).tolist() == [8, 8]
        assert "patients" in split.extras and "sites" in split.extras
        means.append(split.images.mean())
    assert means[0] > means[1] > means[2]  # darker mid-tones as gamma grows with k


def test_acquisition_shift_is_identity_at_zero():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rng = np.random.default_rng(0)
    assert acquisition_shift(img, rng, shift=0.0, k=2, n=2) is img
    assert not np.array_equal(acquisition_shift(img, rng, shift=0.5, k=1, n=2), img)


def test_synthesize_outputs_are_unchanged(tmp_path):
    """The studies' generators add files only; what `synthesize` writes is what it wrote
    before them (arrays of the reference seed pinned by digest)."""
    synthesize(tmp_path, n_per_class=4, modalities=["synthpneumonia", "synthchest"])
    with np.load(tmp_path / "synthpneumonia.npz") as z:
        digest = hashlib.sha256(b"".join(z[k].tobytes() for k in sorted(z.files))).hexdigest()
    assert digest == PNEUMONIA_DIGEST
    assert json.loads((tmp_path / "synthchest.json").read_text())["task"] == \
        "multi-label, binary-class"


def test_cxr_manifest(tmp_path):
    csv_path = synthesize_cxr_manifest(tmp_path, "corpus", patients=10, size=32, seed=2)
    again = synthesize_cxr_manifest(tmp_path / "again", "corpus", patients=10, size=32, seed=2)
    assert csv_path.read_text() == again.read_text()
    dcm = sorted((tmp_path / "corpus").glob("*.dcm"))
    assert dcm and _digest(dcm[0]) == _digest(tmp_path / "again" / "corpus" / dcm[0].name)
    m = read_manifest(csv_path)
    assert m.label_names == CXR14_LABELS and m.multilabel
    assert len(set(m.patients)) == 10 and 2 * 10 <= len(m) <= 4 * 10
    assert {p.suffix for p in m.paths} == {".png", ".dcm"}
    assert set(m.sites) <= {"site0", "site1", "site2"}
    with pytest.raises(MedxferInputError, match="patients >= 2"):
        synthesize_cxr_manifest(tmp_path, patients=1)
