"""One dataset interface over every data source: a MedMNIST-layout ``.npz`` or a CXR manifest.

:func:`load_source` reads a source's *rows* (labels, patient ids, sites, the source's own
split of each row) without decoding images; :meth:`Source.dataset` then gives a torch
``Dataset`` over any rows, so the splits of a protocol (:mod:`medxfer.data.protocol`) are index
arrays into one table whatever the file format:

* ``.npz`` (:mod:`medxfer.data.medmnist`): the rows are its ``train``, ``val`` and ``test``
  splits one after another, each in file order; ``<split>_patients``/``<split>_sites`` when the
  file has them.
* manifest (:mod:`medxfer.data.cxr`): the CSV's rows (PNG, JPEG or DICOM), with its patient,
  site and split columns.

Items are ``(image, label)`` as for :class:`~medxfer.data.medmnist.MedMNISTDataset`: a float
tensor ``(C, H, W)`` in [0, 1] (after ``transform``) and a ``torch.long`` class index or a float
``(L,)`` 0/1 vector (multi-label). Patient ids are integer codes (a patient's images share one;
CL-TCI's positives, seed ``003_4aa9fa56a835f729.txt`` sec. III-A, compare them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medxfer.config import DataConfig
from medxfer.data.medmnist import DatasetInfo
from medxfer.errors import MedxferInputError

SPLITS = ("train", "val", "test")


def patient_codes(ids: np.ndarray | None) -> np.ndarray | None:
    """Integer patient codes: integer ids as they are, other ids (strings) numbered in sorted
    order. Shape ``(N,)`` int64."""
    if ids is None:
        return None
    ids = np.asarray(ids)
    if np.issubdtype(ids.dtype, np.integer):
        return ids.astype(np.int64)
    return np.unique(ids, return_inverse=True)[1].reshape(-1).astype(np.int64)


@dataclass
class Source:
    """The rows of one data source (see the module docstring).

    Attributes:
        name: the source's flag (``data.flag``; a manifest's CSV stem by default).
        info: task, label names, stored channels.
        labels: ``(N, 1)`` class indices, or ``(N, L)`` 0/1 for multi-label.
        patients: ``(N,)`` int64 patient codes, or None.
        sites: ``(N,)`` site of each row, or None.
        splits: ``(N,)`` ``train``/``val``/``test`` (the source's own split), or None.
        n_channels: channels of the items (3 with ``data.as_rgb``).
        where: the file, for messages.
    """

    name: str
    info: DatasetInfo
    labels: np.ndarray
    patients: np.ndarray | None
    sites: np.ndarray | None
    splits: np.ndarray | None
    n_channels: int
    where: str
    _open: Callable[[], Any] = field(repr=False, default=None)
    _reader: Any = field(repr=False, default=None)
    _attribute: Callable[[str], np.ndarray] | None = field(repr=False, default=None)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multilabel(self) -> bool:
        return self.info.multilabel

    def rows(self, split: str) -> np.ndarray:
        """Rows of the source's own ``split`` (sorted; empty without a split column)."""
        if self.splits is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.splits == split).astype(np.int64)

    def attribute(self, name: str) -> np.ndarray:
        """``(N,)`` per-row patient attribute ``name`` (``.npz`` keys ``<split>_<name>``, as
        ``medxfer data synth`` writes ``sex`` and ``age_group``).

        Raises:
            MedxferInputError: the source has no such attribute (manifests have none).
        """
        if self._attribute is None:
            raise MedxferInputError(f"{self.name} has no patient attributes (a .npz with "
                                    f"<split>_{name} keys has them)", path=self.where,
                                    field=name)
        return self._attribute(name)

    def image(self, row: int) -> torch.Tensor:
        """Row ``row``'s image, ``(C, H, W)`` in [0, 1], before any transform."""
        if self._reader is None:
            self._reader = self._open()
        return self._reader.image(int(row))

    def target(self, row: int) -> torch.Tensor:
        """Row ``row``'s label: long scalar, or float ``(L,)`` for multi-label."""
        if self.multilabel:
            return torch.as_tensor(self.labels[row], dtype=torch.float32)
        return torch.as_tensor(int(self.labels[row, 0]), dtype=torch.long)

    def dataset(self, indices: Sequence[int] | np.ndarray,
                transform: Callable | None = None) -> "SourceDataset":
        """A torch ``Dataset`` over ``indices`` (rows of this source)."""
        return SourceDataset(self, indices, transform)


class SourceDataset(Dataset):
    """Rows of a :class:`Source` as a torch ``Dataset`` (items as in the module docstring).

    Attributes:
        rows: the source rows, in item order.
        labels, patients, sites: per item (as the source's).
        info, n_channels: the source's.
    """

    def __init__(self, source: Source, indices, transform: Callable | None = None):
        self.source = source
        self.rows = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= len(source)):
            raise MedxferInputError(f"rows out of range for {len(source)} images",
                                    path=source.where)
        self.transform = transform
        self.labels = source.labels[self.rows]
        self.patients = None if source.patients is None else source.patients[self.rows]
        self.sites = None if source.sites is None else source.sites[self.rows]
        self.info, self.n_channels = source.info, source.n_channels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows[i]
        x = self.source.image(row)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.source.target(row)


# ------------------------------------------------------------------------------- readers

class _NpzImages:
    """Images of the three splits of a ``.npz`` as one row range (train, val, test)."""

    def __init__(self, d: DataConfig, sizes: dict[str, int]):
        from medxfer.data.medmnist import MedMNISTDataset

        self.parts = [MedMNISTDataset(d.root, d.flag, s, d.size, as_rgb=d.as_rgb)
                      for s in SPLITS]
        self.starts = np.cumsum([0] + [sizes[s] for s in SPLITS])

    def image(self, row: int) -> torch.Tensor:
        k = int(np.searchsorted(self.starts, row, side="right")) - 1
        return self.parts[k].image(row - int(self.starts[k]))


def _npz_attribute(path, name: str) -> np.ndarray:
    from medxfer.data.medmnist import _open_npz, _read_key

    with _open_npz(path) as npz:
        return np.concatenate([_read_key(npz, path, f"{split}_{name}").reshape(-1)
                               for split in SPLITS])


class _ManifestImages:
    def __init__(self, manifest, d: DataConfig):
        from medxfer.data.cxr import CXRDataset

        self.data = CXRDataset(manifest, size=d.size, channels=3 if d.as_rgb else 1,
                               on_error="raise")

    def image(self, row: int) -> torch.Tensor:
        return self.data.image(row)


def _npz_source(d: DataConfig) -> Source:
    from medxfer.data.medmnist import _open_npz, _read_key, check_labels, dataset_info, npz_path

    info = dataset_info(d.flag, d.root)
    path = npz_path(d.root, d.flag, d.size)
    labels, extras, sizes = [], {"patients": [], "sites": []}, {}
    with _open_npz(path) as npz:
        for split in SPLITS:
            y = _read_key(npz, path, f"{split}_labels")
            y = y[:, None] if y.ndim == 1 else y
            check_labels(y, info, str(path))
            labels.append(y)
            sizes[split] = len(y)
            for key in extras:
                name = f"{split}_{key}"
                extras[key].append(_read_key(npz, path, name) if name in npz.files else None)
    meta = {k: None if any(v is None for v in vs) else np.concatenate(vs)
            for k, vs in extras.items()}
    for k, v in meta.items():
        if v is not None and len(v) != sum(sizes.values()):
            raise MedxferInputError(f"{k} do not match the labels in length", path=str(path))
    splits = np.concatenate([np.full(sizes[s], s) for s in SPLITS])
    return Source(d.flag, info, np.concatenate(labels), patient_codes(meta["patients"]),
                  meta["sites"], splits, 3 if d.as_rgb else info.n_channels, str(path),
                  partial(_NpzImages, d, sizes), _attribute=partial(_npz_attribute, path))


def _manifest_source(d: DataConfig) -> Source:
    from dataclasses import replace

    from medxfer.data.cxr import read_manifest

    m = read_manifest(d.manifest, label_names=d.labels, uncertain=d.uncertain,
                      root=d.image_root, patient_column=d.patient_column,
                      site_column=d.site_column, split_column=d.split_column)
    labels = m.labels if m.multilabel else m.labels[:, None]
    info = replace(m.info, flag=d.flag)
    return Source(d.flag, info, labels, patient_codes(m.patients), m.sites, m.splits,
                  3 if d.as_rgb else 1, str(d.manifest), partial(_ManifestImages, m, d))


def load_source(d: DataConfig) -> Source:
    """The rows of ``data`` (images are read only when a dataset item is).

    Raises:
        MedxferInputError: missing or malformed file, column or labels (naming the file).
    """
    return _manifest_source(d) if d.manifest is not None else _npz_source(d)
