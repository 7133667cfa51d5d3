"""Synthetic data for studies: shifted "hospitals" of one modality and a chest X-ray manifest.

* :func:`synthesize_hospitals` -- ``<flag>_h<k>.npz`` (k = 1..n): the same modality (classes,
  task, drawing) with new patients, and an acquisition shift that grows with k and ``shift``
  (0: none): contrast gamma ``1 + shift * k``, gain ``1 - 0.3 * shift * k / n``, a blur of
  ``0.5 * shift * k`` pixels (at 28 px, scaled with the size) and extra noise ``0.02 * shift * k``.
  The modality itself (:func:`medxfer.data.synth.synthesize`) is hospital 0, the source a model
  trains on; the others are the out-of-distribution test sets of seed ``000_3dd3de5c534b555f.txt``
  sec. 4.1 (P2, P3: the same disease, other hospitals).
* :func:`synthesize_cxr_manifest` -- ``<out>/<name>.csv`` plus images under
  ``<out>/<name>/``: 14 labels (:data:`medxfer.data.cxr.CXR14_LABELS`, one 0/1 column each),
  ``patient_id``, ``site``, half of the images PNG (8-bit) and half DICOM (16-bit, MONOCHROME2,
  ``RescaleSlope`` 1), the layout :func:`medxfer.data.cxr.read_manifest` reads (seed
  ``002_d7fb762c9e967338.txt``: train on one CXR corpus, test on another). Four labels show in
  the image (Nodule, Effusion, Cardiomegaly, and Consolidation/Infiltration/Pneumonia as
  opacity, drawn as ``synthchest``); the others are patient traits. Patients have 2-4 images;
  ``shift`` changes the acquisition as for hospitals, so two manifests with different names
  and shifts are two corpora.

* :class:`SynthSpec` / :func:`ensure_synthetic` -- a study's ``synthesize:`` section: the data
  above (and modalities) written into one folder on first use, atomically (a temporary sibling
  renamed into place), so a shipped smoke study runs on a fresh clone with no prior step.

Everything is deterministic in ``seed`` (DICOM UIDs included); the outputs of
:func:`medxfer.data.synth.synthesize` are not touched.
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from medxfer.data.medmnist import DatasetInfo, write_sidecar
from medxfer.data.synth import MODALITIES, generate_modality
from medxfer.errors import MedxferInputError


def hospital_flag(flag: str, k: int) -> str:
    """The flag of hospital ``k`` of ``flag`` (``synthpneumonia_h1``)."""
    return f"{flag}_h{k}"


def acquisition_shift(img: np.ndarray, rng: np.random.Generator, *, shift: float, k: int,
                      n: int) -> np.ndarray:
    """Hospital ``k`` of ``n``'s acquisition applied to a uint8 image (module docstring)."""
    if shift <= 0 or k <= 0:
        return img
    x = img.astype(np.float32) / 255.0
    sigma = 0.5 * shift * k * img.shape[0] / 28
    if sigma > 0.05:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = np.clip(x, 0, 1) ** (1 + shift * k) * (1 - 0.3 * shift * k / n)
    x = x + rng.normal(0, 0.02 * shift * k, x.shape).astype(np.float32)
    return np.clip(np.round(np.clip(x, 0, 1) * 255), 0, 255).astype(np.uint8)


def synthesize_hospitals(out: str | os.PathLike, flag: str = "synthpneumonia", *,
                         hospitals: int = 2, shift: float = 0.5, size: int = 28,
                         n_per_class: int = 50, seed: int = 0, n_sites: int = 3) -> list[Path]:
    """Write ``hospitals`` shifted copies of modality ``flag`` (module docstring).

    Raises:
        MedxferInputError: unknown modality, or counts/shift out of range.
    """
    if flag not in MODALITIES:
        raise MedxferInputError(f"unknown modality {flag!r}; valid: {list(MODALITIES)}",
                                field="modalities")
    if hospitals < 1 or not 0 <= shift <= 1 or n_per_class < 1:
        raise MedxferInputError("need hospitals >= 1, 0 <= shift <= 1, n_per_class >= 1",
                                field="hospitals")
    mod, root = MODALITIES[flag], Path(out)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(1, hospitals + 1):
        name = hospital_flag(flag, k)
        arrays = generate_modality(mod, size=size, n_per_class=n_per_class, n_sites=n_sites,
                                   seed=seed * 1000 + k)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        for key in [k_ for k_ in arrays if k_.endswith("_images")]:
            arrays[key] = np.stack([acquisition_shift(im, rng, shift=shift, k=k, n=hospitals)
                                    for im in arrays[key]])
        path = root / (f"{name}.npz" if size == 28 else f"{name}_{size}.npz")
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        n_samples = {s: int(len(arrays[f"{s}_labels"])) for s in ("train", "val", "test")}
        write_sidecar(root, DatasetInfo(name, mod.task, mod.labels, mod.n_channels, {
            "synthetic": True, "family": mod.family, "description": mod.feature,
            "hospital": k, "of": flag, "shift": shift, "n_samples": n_samples, "seed": seed,
            "n_sites": n_sites}))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------- CXR manifest

def _write_dicom(path: Path, img: np.ndarray, patient: str, key: str) -> None:
    """A 16-bit MONOCHROME2 DICOM whose stored values are ``img * 257`` (so the reader's
    full-range scaling gives back ``img / 255``); UIDs derived from ``key``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[key, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[key, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[key, "series"])
    ds.PatientID, ds.Modality = patient, "DX"
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = (img.astype(np.uint16) * 257).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def synthesize_cxr_manifest(out: str | os.PathLike, name: str = "cxr", *, patients: int = 60,
                            size: int = 64, seed: int = 0, n_sites: int = 3,
                            shift: float = 0.0, dicom_share: float = 0.5) -> Path:
    """Write a synthetic CXR manifest and its images (module docstring); returns the CSV.

    Raises:
        MedxferInputError: counts or shares out of range.
    """
    from medxfer.data.cxr import CXR14_LABELS
    from medxfer.data.synth import _chest, _patient_params, _to_uint8

    if patients < 2 or n_sites < 1 or not 0 <= dicom_share <= 1 or not 0 <= shift <= 1:
        raise MedxferInputError("need patients >= 2, n_sites >= 1, 0 <= dicom_share <= 1, "
                                "0 <= shift <= 1", field="patients")
    root = Path(out)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    visible = {"Nodule": "nodule", "Effusion": "effusion", "Cardiomegaly": "cardio"}
    opacity = ("Consolidation", "Infiltration", "Pneumonia")
    rows = []
    for p in range(patients):
        pat = _patient_params(rng, size)
        site = int(rng.integers(n_sites))
        base = rng.random(len(CXR14_LABELS)) < 0.25
        for i in range(int(rng.integers(2, 5))):
            y = base ^ (rng.random(len(CXR14_LABELS)) < 0.05)
            found = dict(zip(CXR14_LABELS, y.astype(int), strict=True))
            draw = {v: found[k] for k, v in visible.items()}
            img, _ = _chest(rng, pat, size, opacity=int(any(found[k] for k in opacity)), **draw)
            img = np.clip(img * (0.9 + 0.05 * site) + rng.normal(0, 0.02, img.shape), 0, 1)
            img = acquisition_shift(_to_uint8(img), rng, shift=shift, k=1, n=1)
            pid = f"{name}-p{p:04d}"
            dicom = rng.random() < dicom_share
            rel = Path(name) / f"{pid}_{i}.{'dcm' if dicom else 'png'}"
            if dicom:
                _write_dicom(root / rel, img, pid, f"{seed}/{name}/{rel}")
            else:
                cv2.imwrite(str(root / rel), img)
            rows.append({"path": rel.as_posix(), "patient_id": pid, "site": f"site{site}",
                         **found})
    csv_path = root / f"{name}.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["path", "patient_id", "site", *CXR14_LABELS])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "README.json").write_text(json.dumps(
        {"generator": "medxfer data synth --cxr", "patients": patients, "images": len(rows),
         "size": size, "seed": seed, "shift": shift, "labels": list(CXR14_LABELS)}, indent=1))
    return csv_path


# ----------------------------------------------------------- a study's declared data

class ManifestSpec(BaseModel):
    """One synthetic CXR corpus of a :class:`SynthSpec` (:func:`synthesize_cxr_manifest`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    patients: int = Field(60, ge=2)
    shift: float = Field(0.0, ge=0, le=1)
    size: Literal[32, 64, 128] = 64


class SynthSpec(BaseModel):
    """Synthetic data a study declares (its ``synthesize:`` section), written on first use.

    The same as ``medxfer data synth --out OUT --modalities ... --n-per-class ... --hospitals
    ... --shift ... --cxr-name ...``: ``modalities`` (``[]``: none) at ``size`` with
    ``n_per_class`` training images per class, ``hospitals`` shifted copies of each, and the
    CXR ``manifests``. ``out`` holds nothing else: :func:`ensure_synthetic` writes it whole
    or not at all.
    """

    model_config = ConfigDict(extra="forbid")
    out: str
    modalities: list[str] = Field(default_factory=lambda: ["synthpneumonia"])
    size: Literal[28, 64, 128, 224] = 28
    n_per_class: int = Field(50, ge=1)
    seed: int = 0
    sites: int = Field(3, ge=1)
    hospitals: int = Field(0, ge=0)
    shift: float = Field(0.5, ge=0, le=1)
    manifests: list[ManifestSpec] = Field(default_factory=list)

    @field_validator("modalities")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(MODALITIES))
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; valid: {sorted(MODALITIES)}")
        return v


#: Written last into a declared folder: the spec that produced it.
SYNTH_MARKER = "medxfer_synth.json"


def write_synthetic(spec: SynthSpec, out: Path) -> list[Path]:
    """Write everything ``spec`` declares under ``out`` (not atomic; see
    :func:`ensure_synthetic`)."""
    from medxfer.data.synth import synthesize

    paths = synthesize(out, size=spec.size, n_per_class=spec.n_per_class, seed=spec.seed,
                       n_sites=spec.sites, modalities=spec.modalities) if spec.modalities else []
    for flag in spec.modalities if spec.hospitals else []:
        paths += synthesize_hospitals(out, flag, hospitals=spec.hospitals, shift=spec.shift,
                                      size=spec.size, n_per_class=spec.n_per_class,
                                      seed=spec.seed, n_sites=spec.sites)
    for m in spec.manifests:
        paths.append(synthesize_cxr_manifest(out, m.name, patients=m.patients, size=m.size,
                                             seed=spec.seed, n_sites=spec.sites, shift=m.shift))
    return paths


def ensure_synthetic(spec: SynthSpec, *, base_dir: str | os.PathLike | None = None,
                     source: str = "study") -> tuple[Path, bool]:
    """Make sure the folder ``spec.out`` holds the declared data; returns ``(folder, written)``.

    Absent: everything is written into a temporary sibling folder, then renamed into place in
    one step, so a crash or a concurrent study never leaves a half-written folder (the loser
    of a race drops its copy). Present with the same declaration (:data:`SYNTH_MARKER`):
    kept. Present otherwise: an error, since it may be the user's own data.

    Raises:
        MedxferInputError: ``synthesize.out`` exists but was not written from this spec.
    """
    import shutil
    import tempfile

    out = Path(spec.out)
    if not out.is_absolute():
        out = Path(base_dir or Path.cwd()) / out
    want = spec.model_dump(exclude={"out"})
    if out.exists():
        _check_marker(out, want, source)
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_synthetic(spec, tmp)
        (tmp / SYNTH_MARKER).write_text(json.dumps(want, indent=1, sort_keys=True))
        try:
            os.rename(tmp, out)
        except OSError:
            if not out.exists():
                raise
            _check_marker(out, want, source)  # another process wrote it first
            return out, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, True


def _check_marker(out: Path, want: dict, source: str) -> None:
    marker = out / SYNTH_MARKER
    found = json.loads(marker.read_text()) if marker.is_file() else None
    if found != json.loads(json.dumps(want)):
        what = ("was written by another synthesize: declaration" if found is not None else
                f"exists and holds no {SYNTH_MARKER}")
        raise MedxferInputError(f"synthesize.out: {out} {what}; remove it, or point "
                                "synthesize.out (and the data paths) at a new folder",
                                path=source)
