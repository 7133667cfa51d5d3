"""MedMNIST ``.npz`` files from a local root: metadata, arrays, a torch ``Dataset``.

The layout is MedMNIST's own (https://medmnist.com, v2/v3 releases on Zenodo): ``<flag>.npz``
holds the 28x28 images, ``<flag>_<size>.npz`` the 64/128/224 ones (``<flag>_28.npz`` is accepted
too); keys ``{train,val,test}_images`` (uint8, ``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB) and
``{train,val,test}_labels`` (``(N, 1)`` class index or ``(N, L)`` multi-label 0/1). Extra keys that
the synthetic generator writes (``*_patients``, ``*_sites``, ``*_images_clean``, ``*_masks``) are
read when present.

Metadata (task, label names, channels) comes from a sidecar ``<flag>.json`` beside the ``.npz``
when present (the synthetic modalities, or a user's own data in this layout), else from the
``medmnist`` package's ``INFO``. Files are never downloaded: a missing file is a
:class:`~medxfer.errors.MedxferInputError` naming the expected path.

Large sizes are read lazily: each array is copied once out of the (zip) archive into
``<cache_dir>/<flag>_<size>-<stamp>/<key>.npy`` (a byte-for-byte stream copy, constant memory) and
memory-mapped from there, so DataLoader workers share pages instead of each decompressing GBs.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medxfer.errors import MedxferInputError

SPLITS = ("train", "val", "test")
SIZES = (28, 64, 128, 224)
MEDMNIST_2D = (
    "bloodmnist", "breastmnist", "chestmnist", "dermamnist", "octmnist", "organamnist",
    "organcmnist", "organsmnist", "pathmnist", "pneumoniamnist", "retinamnist", "tissuemnist",
)
TASKS = ("binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression")
#: Sizes from which arrays are memory-mapped by default (``mmap=None``).
MMAP_FROM_SIZE = 128
_HOWTO = ("obtain the MedMNIST .npz files from https://medmnist.com (Zenodo record 10519652) "
          "and put them under the data root, or write synthetic ones with "
          "`medxfer data synth --out DIR`")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its flag, task and label names.

    Attributes:
        flag: dataset name, e.g. ``"pathmnist"``.
        task: one of :data:`TASKS` (MedMNIST's names).
        labels: label names in index order (class names, or the L labels of a multi-label task).
        n_channels: 1 (grey) or 3 (RGB) as stored.
        extra: the rest of the metadata (description, synthetic family, ...).
    """

    flag: str
    task: str
    labels: tuple[str, ...]
    n_channels: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_classes(self) -> int:
        """Number of classes (multi-class/binary) or labels (multi-label)."""
        return len(self.labels)

    @property
    def multilabel(self) -> bool:
        return self.task.startswith("multi-label")


def sidecar_path(root: str | os.PathLike, flag: str) -> Path:
    """``<root>/<flag>.json``: metadata for datasets that are not in ``medmnist.INFO``."""
    return Path(root) / f"{flag}.json"


def write_sidecar(root: str | os.PathLike, info: DatasetInfo) -> Path:
    """Write ``<root>/<flag>.json`` in the shape of a ``medmnist.INFO`` entry."""
    meta = {**info.extra, "task": info.task, "n_channels": info.n_channels,
            "label": {str(i): name for i, name in enumerate(info.labels)}}
    path = sidecar_path(root, info.flag)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def _info_from_meta(flag: str, meta: dict[str, Any], source: str) -> DatasetInfo:
    try:
        task, label, n_channels = meta["task"], meta["label"], int(meta["n_channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MedxferInputError(f"metadata needs 'task', 'label' and 'n_channels' ({exc})",
                                path=source) from None
    if task not in TASKS:
        raise MedxferInputError(f"unknown task {task!r}; expected one of {list(TASKS)}",
                                path=source, field="task")
    labels = tuple(label[str(i)] for i in range(len(label)))
    extra = {k: v for k, v in meta.items() if k not in ("task", "label", "n_channels")}
    return DatasetInfo(flag, task, labels, n_channels, extra)


def dataset_info(flag: str, root: str | os.PathLike | None = None) -> DatasetInfo:
    """Metadata of ``flag``: the sidecar ``<root>/<flag>.json`` if present, else ``medmnist.INFO``.

    Raises:
        MedxferInputError: unreadable sidecar, or a flag known to neither.
    """
    if root is not None and sidecar_path(root, flag).is_file():
        path = sidecar_path(root, flag)
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MedxferInputError(f"cannot read metadata: {exc}", path=str(path)) from None
        return _info_from_meta(flag, meta, str(path))
    from medmnist.info import INFO

    if flag not in INFO or flag not in MEDMNIST_2D:
        where = f" and no sidecar {sidecar_path(root, flag)}" if root is not None else ""
        raise MedxferInputError(f"unknown dataset {flag!r}{where}; MedMNIST 2D flags are "
                                f"{list(MEDMNIST_2D)}", field="flag")
    return _info_from_meta(flag, INFO[flag], "medmnist.INFO")


def npz_path(root: str | os.PathLike, flag: str, size: int = 28) -> Path:
    """The file holding ``flag`` at ``size``: ``<flag>.npz`` (28) or ``<flag>_<size>.npz``.

    Raises:
        MedxferInputError: bad size, or no such file (the message names it and how to get it).
    """
    if size not in SIZES:
        raise MedxferInputError(f"size {size} is not one of {list(SIZES)}", field="size")
    root = Path(root)
    candidates = [root / f"{flag}_{size}.npz"]
    if size == 28:
        candidates.insert(0, root / f"{flag}.npz")
    for path in candidates:
        if path.is_file():
            return path
    raise MedxferInputError(f"file not found (expected {' or '.join(map(str, candidates))}); "
                            f"medxfer never downloads: {_HOWTO}", path=str(candidates[0]))


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MedxferInputError(f"not a readable .npz archive ({type(exc).__name__}: {exc})",
                                path=str(path)) from None


def _read_key(npz: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    if key not in npz.files:
        raise MedxferInputError(f"missing key {key!r}; the archive has {sorted(npz.files)}",
                                path=str(path), field=key)
    try:
        return npz[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MedxferInputError(f"corrupt array ({type(exc).__name__}: {exc})",
                                path=str(path), field=key) from None


def _cached_npy(path: Path, key: str, cache_dir: Path) -> np.ndarray:
    """Stream ``key`` out of the archive into a ``.npy`` once; return it memory-mapped."""
    st = path.stat()
    target = cache_dir / f"{path.stem}-{st.st_size}-{st.st_mtime_ns}" / f"{key}.npy"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        try:
            with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, length=16 << 20)
            os.replace(tmp, target)  # atomic: concurrent workers never see half a file
        except KeyError:
            raise MedxferInputError(f"missing key {key!r}", path=str(path), field=key) from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise MedxferInputError(f"corrupt array ({type(exc).__name__}: {exc})",
                                    path=str(path), field=key) from None
        finally:
            tmp.unlink(missing_ok=True)
    try:
        return np.load(target, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise MedxferInputError(f"corrupt cached array ({exc}); delete it to re-extract",
                                path=str(target), field=key) from None


def default_cache_dir(root: str | os.PathLike) -> Path:
    """``$MEDXFER_CACHE_DIR`` if set, else ``<root>/.npy-cache``."""
    env = os.environ.get("MEDXFER_CACHE_DIR")
    return Path(env) if env else Path(root) / ".npy-cache"


@dataclass
class SplitArrays:
    """The arrays of one split. ``images``: ``(N, H, W)`` or ``(N, H, W, C)`` uint8; ``labels``:
    ``(N, 1)`` or ``(N, L)``; ``extras``: other ``<split>_*`` arrays (patients, sites, ...)."""

    images: np.ndarray
    labels: np.ndarray
    extras: dict[str, np.ndarray]


def load_split(root: str | os.PathLike, flag: str, split: str = "train", size: int = 28, *,
               mmap: bool | None = None, cache_dir: str | os.PathLike | None = None,
               image_key: str = "images") -> SplitArrays:
    """Read one split of ``flag`` from ``root``.

    Args:
        mmap: memory-map via the ``.npy`` cache; ``None``: only for ``size >= 128``.
        cache_dir: where extracted ``.npy`` files go (default :func:`default_cache_dir`).
        image_key: ``"images"``, or e.g. ``"images_clean"`` for the text-free synthetic images.

    Raises:
        MedxferInputError: missing or corrupt file, missing key, inconsistent lengths/labels.
    """
    if split not in SPLITS:
        raise MedxferInputError(f"split {split!r} is not one of {list(SPLITS)}", field="split")
    path = npz_path(root, flag, size)
    npz = _open_npz(path)
    use_mmap = size >= MMAP_FROM_SIZE if mmap is None else mmap
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(root)
    prefix = f"{split}_"
    keys = [k for k in npz.files if k.startswith(prefix)]
    with npz:
        wanted = {"images": f"{prefix}{image_key}", "labels": f"{prefix}labels"}
        arrays = {}
        for role, key in wanted.items():
            if key not in npz.files:
                raise MedxferInputError(f"missing key {key!r}; the archive has {sorted(npz.files)}",
                                        path=str(path), field=key)
            arrays[role] = _cached_npy(path, key, cache) if use_mmap else _read_key(npz, path, key)
        extras = {k[len(prefix):]: _read_key(npz, path, k) for k in keys
                  if k not in wanted.values() and not k.endswith("_images_clean")
                  and k != f"{prefix}images"}
    images, labels = arrays["images"], arrays["labels"]
    if labels.ndim == 1:
        labels = labels[:, None]
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise MedxferInputError(f"{wanted['images']} has shape {images.shape} and "
                                f"{wanted['labels']} {labels.shape}: expected (N, H, W[, C]) "
                                "images and N labels", path=str(path), field=wanted["images"])
    for name, arr in extras.items():
        if len(arr) != len(images):
            raise MedxferInputError(f"has {len(arr)} rows, the images {len(images)}",
                                    path=str(path), field=prefix + name)
    return SplitArrays(images, labels, extras)


def check_labels(labels: np.ndarray, info: DatasetInfo, path: str = "") -> None:
    """Raise :class:`MedxferInputError` if ``labels`` do not fit ``info`` (shape, range)."""
    if info.multilabel:
        ok = labels.shape[1] == info.n_classes and np.isin(labels, (0, 1)).all()
        want = f"(N, {info.n_classes}) of 0/1"
    else:
        ok = labels.shape[1] == 1 and labels.min(initial=0) >= 0 and \
            labels.max(initial=0) < info.n_classes
        want = f"(N, 1) class indices in [0, {info.n_classes})"
    if not ok:
        raise MedxferInputError(f"labels of shape {labels.shape} (range {labels.min(initial=0)}.."
                                f"{labels.max(initial=0)}) do not fit task {info.task!r}: "
                                f"expected {want}", path=path or None, field="labels")


class MedMNISTDataset(Dataset):
    """A torch ``Dataset`` over one split of a MedMNIST-layout ``.npz``.

    Items are ``(image, label)``: ``image`` a float tensor ``(C, H, W)`` in [0, 1] (after
    ``transform`` if given); ``label`` a ``torch.long`` scalar (binary, multi-class, ordinal) or a
    float tensor ``(L,)`` of 0/1 (multi-label).

    Args:
        root: directory holding the ``.npz`` (and sidecar ``.json``) files.
        flag: dataset name, e.g. ``"chestmnist"`` or a synthetic modality.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: 28, 64, 128 or 224.
        transform: callable on the ``(C, H, W)`` tensor (see :mod:`medxfer.data.transforms`).
        as_rgb: repeat grey images to 3 channels (default keeps 1 channel).
        indices: a subset of rows (e.g. from :func:`subsample_per_class`).
        mmap, cache_dir, image_key: as for :func:`load_split`.

    Attributes:
        info: the :class:`DatasetInfo`.
        labels: ``(len(self), 1 or L)`` int array aligned with items.
        patients, sites: per-item arrays when the file has them, else ``None``.
        extras: all extra per-item arrays (``patients``, ``sites``, ``masks``, ...).
    """

    def __init__(self, root: str | os.PathLike, flag: str, split: str = "train",
                 size: int = 28, *, transform: Callable | None = None, as_rgb: bool = False,
                 indices: Sequence[int] | np.ndarray | None = None, mmap: bool | None = None,
                 cache_dir: str | os.PathLike | None = None, image_key: str = "images"):
        self.root, self.flag, self.split, self.size = Path(root), flag, split, size
        self.info = dataset_info(flag, root)
        arrays = load_split(root, flag, split, size, mmap=mmap, cache_dir=cache_dir,
                            image_key=image_key)
        check_labels(arrays.labels, self.info, str(npz_path(root, flag, size)))
        n = len(arrays.images)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise MedxferInputError(f"indices out of range for {n} images", field="indices")
        self._images = arrays.images
        self.labels = np.asarray(arrays.labels)[self.indices]
        self.extras = {k: np.asarray(v)[self.indices] for k, v in arrays.extras.items()}
        self.patients = self.extras.get("patients")
        self.sites = self.extras.get("sites")
        self.transform, self.as_rgb = transform, as_rgb

    @property
    def n_channels(self) -> int:
        """Channels of the returned tensors (before ``transform``)."""
        return 3 if self.as_rgb else self.info.n_channels

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int):
        """Item ``i`` as a float tensor ``(C, H, W)`` in [0, 1], before ``transform``."""
        arr = np.asarray(self._images[self.indices[i]])
        x = torch.from_numpy(arr.astype(np.float32) / 255.0)
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        if self.as_rgb and x.shape[0] == 1:
            x = x.expand(3, -1, -1).contiguous()
        return x

    def target(self, i: int):
        """Label of item ``i``: long scalar, or float ``(L,)`` for multi-label."""
        if self.info.multilabel:
            return torch.as_tensor(self.labels[i], dtype=torch.float32)
        return torch.as_tensor(int(self.labels[i, 0]), dtype=torch.long)

    def __getitem__(self, i: int):
        x = self.image(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.target(i)


def load_target(root: str | os.PathLike, flag: str, size: int = 28, *,
                n_train_per_class: int | None = 100, n_val_per_class: int | None = 25,
                seed: int = 0, transform: Callable | None = None,
                eval_transform: Callable | None = None, as_rgb: bool = False,
                mmap: bool | None = None,
                cache_dir: str | os.PathLike | None = None) -> dict[str, MedMNISTDataset]:
    """The three splits of a transfer target, train/val cut per class as in the thesis.

    Seed ``004_43f54b618356cecf.txt`` sec. 6.4.1: 100 train and 25 val images per class (see
    :func:`medxfer.data.splits.subsample_per_class` for the multi-label rule); the test split is
    whole. ``None`` keeps a split whole. ``transform`` goes to train, ``eval_transform`` to
    val/test.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` datasets.
    """
    from medxfer.data.splits import subsample_per_class

    info = dataset_info(flag, root)
    out = {}
    for k, (split, n) in enumerate((("train", n_train_per_class), ("val", n_val_per_class),
                                    ("test", None))):
        idx = None
        if n is not None:
            labels = load_split(root, flag, split, size, mmap=mmap, cache_dir=cache_dir).labels
            idx = subsample_per_class(labels, n, seed=(seed, k), multilabel=info.multilabel)
        out[split] = MedMNISTDataset(root, flag, split, size, indices=idx, as_rgb=as_rgb,
                                     transform=transform if split == "train" else eval_transform,
                                     mmap=mmap, cache_dir=cache_dir)
    return out
