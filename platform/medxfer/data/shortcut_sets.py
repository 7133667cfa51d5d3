"""Training, i.i.d. and o.o.d. sets of a shortcut study (thesis ch. 4 sec. 4.2.2, ch. 5 5.1.2).

:func:`confound` decides, from the labels (and a patient attribute), which rows a set keeps and
which of them carry the confounder; :class:`ConfoundedDataset` applies an image confounder to
those rows of a :class:`~medxfer.data.medmnist.MedMNISTDataset` before the dataset's own
transform (augmentation), with a per-row seed so an image carries the same artifact every epoch.
See :mod:`medxfer.data.confounders` for the confounders and the departures from the thesis.

* ``"train"`` / ``"iid"``: the confounder in ``round(p_art * n)`` random images of
  ``target_class``, none in the other classes.
* ``"ood"``: the confounder in every image of the other classes and in none of ``target_class``
  (thesis: "introduce the same artifact ... to the negative class with p_art = 1").

In a study (``protocol.shortcut``), :func:`confound_selection` applies this to a cell's rows
(train and validation as ``"train"``, the test part as ``"iid"`` and, reversed, as the o.o.d.
part ``ood``) and :func:`part_dataset` gives each part's dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from medxfer.config import ShortcutConfig
from medxfer.data.confounders import confounder_info, confounder_transform
from medxfer.data.sources import SourceDataset
from medxfer.errors import MedxferInputError

Role = Literal["train", "iid", "ood"]


@dataclass(frozen=True)
class Confounding:
    """Rows of a split that a set keeps, and which of them carry the confounder.

    Attributes:
        indices: ``(m,)`` row indices into the split, sorted.
        applied: ``(m,)`` bool, True where the row carries the confounder (for ``attribute``:
            where the row has the attribute value).
    """

    indices: np.ndarray
    applied: np.ndarray


def _labels_1d(labels) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise MedxferInputError(f"shortcut studies need single-label data, got labels of shape "
                                f"{np.shape(labels)}", field="labels")
    return y


def _check(p_art: float, y: np.ndarray, target_class: int) -> None:
    if not 0.0 <= p_art <= 1.0:
        raise MedxferInputError(f"p_art must be in [0, 1], got {p_art}", field="p_art")
    if not (y == target_class).any():
        raise MedxferInputError(f"no image of class {target_class} to confound (classes: "
                                f"{sorted(set(y.tolist()))})", field="target_class")


def _image_confounding(y, p_art, role, target_class, rng) -> Confounding:
    target = y == target_class
    applied = np.zeros(len(y), bool)
    if role == "ood":
        applied[~target] = True
    else:
        idx = np.flatnonzero(target)
        applied[rng.choice(idx, int(round(p_art * len(idx))), replace=False)] = True
    return Confounding(np.arange(len(y)), applied)


def _most_target(n_with: int, n_without: int, p_art: float) -> int:
    """The most images of the class a sample with share ``p_art`` of the value can keep."""
    return max((n for n in range(n_with + n_without, 0, -1)
                if round(p_art * n) <= n_with and n - round(p_art * n) <= n_without),
               default=0)


def common_n_target(labels, attribute, p_arts, *, target_class: int = 1, value: int = 1) -> int:
    """The most ``target_class`` images every share in ``p_arts`` allows (``attribute``
    confounder): one class size for all cells of a study, so only the correlation changes."""
    y, a = _labels_1d(labels), np.asarray(attribute)
    target, has = y == target_class, a == value
    n_with, n_without = int((target & has).sum()), int((target & ~has).sum())
    return min(_most_target(n_with, n_without, p) for p in p_arts)


def _attribute_confounding(y, attribute, p_art, role, target_class, value, n_target,
                           rng) -> Confounding:
    a = np.asarray(attribute)
    if a.shape != y.shape:
        raise MedxferInputError(f"attribute has shape {a.shape}, labels {y.shape}",
                                field="attribute")
    target, has = y == target_class, a == value
    if role == "ood":
        keep = (target & ~has) | (~target & has)
        return Confounding(np.flatnonzero(keep), has[keep])
    with_v, without_v = np.flatnonzero(target & has), np.flatnonzero(target & ~has)
    if n_target is None:
        n_target = _most_target(len(with_v), len(without_v), p_art)
    k = int(round(p_art * n_target))
    if n_target < 1 or k > len(with_v) or n_target - k > len(without_v):
        raise MedxferInputError(
            f"cannot draw {n_target} images of class {target_class} with {k} of attribute value "
            f"{value} (have {len(with_v)} with and {len(without_v)} without)", field="n_target")
    chosen = np.concatenate([rng.choice(with_v, k, replace=False),
                             rng.choice(without_v, n_target - k, replace=False),
                             np.flatnonzero(~target & ~has)])
    chosen.sort()
    return Confounding(chosen, has[chosen])


def confound(labels, confounder: str, *, p_art: float, role: Role = "train",
             target_class: int = 1, attribute=None, value: int = 1,
             n_target: int | None = None, seed: int = 0) -> Confounding:
    """Which rows a shortcut-study set keeps and which carry the confounder (module docstring).

    Args:
        labels: ``(n,)`` or ``(n, 1)`` class indices of the split.
        confounder: A name from :func:`medxfer.data.confounders.list_confounders`.
        p_art: Share of ``target_class`` images with the confounder (train and i.i.d. sets).
        role: ``"train"``, ``"iid"`` or ``"ood"``.
        target_class: The class the confounder is correlated with (the positives).
        attribute: ``(n,)`` attribute values (``attribute`` confounder only).
        value: The attribute value that plays the artifact (e.g. 1 = female).
        n_target: ``attribute`` only: images of ``target_class`` to keep (default: the most this
            ``p_art`` allows; pass one number for every ``p_art`` of a study to keep sizes equal).
        seed: Selection seed.

    Raises:
        MedxferInputError: Unknown confounder or role, ``p_art`` outside [0, 1], no image of
            ``target_class``, a missing attribute, or too few images for the requested sample.
    """
    info = confounder_info(confounder)
    if role not in ("train", "iid", "ood"):
        raise MedxferInputError(f"role must be 'train', 'iid' or 'ood', got {role!r}",
                                field="role")
    y = _labels_1d(labels)
    _check(p_art, y, target_class)
    rng = np.random.default_rng([seed, {"train": 0, "iid": 1, "ood": 2}[role]])
    if info.kind == "image":
        return _image_confounding(y, p_art, role, target_class, rng)
    if attribute is None:
        raise MedxferInputError("the 'attribute' confounder needs the per-image attribute "
                                "values (e.g. the split's 'sex' array from `medxfer data synth`)",
                                field="attribute")
    return _attribute_confounding(y, attribute, p_art, role, target_class, value, n_target, rng)


def _row_generator(seed: int, row: int) -> torch.Generator:
    """The generator of one row's random artifact: the same every epoch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + row)


class ConfoundedDataset(Dataset):
    """The rows of ``base`` a :class:`Confounding` keeps, image confounder applied where marked.

    Args:
        base: A :class:`~medxfer.data.medmnist.MedMNISTDataset` (uses ``image``, ``target`` and
            its ``transform``, applied after the confounder).
        confounding: From :func:`confound` on ``base.labels``.
        confounder: Registry name; image confounders are applied, ``attribute`` only selects.
        params: Parameters of the confounder's transform (e.g. ``{"d0": 6}``).
        seed: Base of the per-row generator seeds of random confounders (Poisson noise).
    """

    def __init__(self, base, confounding: Confounding, confounder: str,
                 params: dict | None = None, seed: int = 0):
        if len(confounding.indices) and confounding.indices.max() >= len(base):
            raise MedxferInputError(f"confounding selects row {confounding.indices.max()} of a "
                                    f"dataset of {len(base)}", field="indices")
        self.base, self.confounding, self.seed = base, confounding, int(seed)
        info = confounder_info(confounder)
        self.transform = confounder_transform(confounder, **(params or {})) \
            if info.kind == "image" else None

    def __len__(self) -> int:
        return len(self.confounding.indices)

    def __getitem__(self, i: int):
        row = int(self.confounding.indices[i])
        x = self.base.image(row)
        if self.transform is not None and self.confounding.applied[i]:
            x = self.transform(x, generator=_row_generator(self.seed, row))
        if self.base.transform is not None:
            x = self.base.transform(x)
        return x, self.base.target(row)


# ---------------------------------------------------------------- a study cell's confounded sets

#: The parts of a cell's selection a shortcut study confounds, and the role each plays:
#: validation selects the model on data confounded like the training data.
PART_ROLES = {"train": "train", "val": "train", "test": "iid", "ood": "ood"}


def _seed(seed: int, fold: int | None, part: str) -> int:
    """One selection seed per (study seed, fold, part)."""
    stream = list(PART_ROLES).index(part)
    return int(np.random.SeedSequence([seed, 0 if fold is None else fold + 1, stream])
               .generate_state(1)[0])


def _no_target(rows: np.ndarray, a: np.ndarray | None, role: str,
               value: int) -> tuple[np.ndarray, np.ndarray]:
    """A part without any image of the target class (a small validation part can be one): the
    other classes as :func:`confound` treats them (confounded, or with the value, only o.o.d.)."""
    ood = role == "ood"
    if a is None:
        return rows, np.full(len(rows), ood)
    keep = (a == value) == ood
    return rows[keep], np.full(int(keep.sum()), ood)


def check_shortcut(shortcut: ShortcutConfig, source) -> None:
    """That ``shortcut`` fits ``source`` (a :class:`~medxfer.data.sources.Source`): a known
    confounder whose transform accepts ``params``, single-label data with ``target_class``,
    and the attribute where the confounder needs one.

    Raises:
        MedxferInputError: naming the field (``confounder``, ``params``, ``target_class``,
            ``attribute``).
    """
    info = confounder_info(shortcut.confounder)
    if info.kind == "image":
        try:
            confounder_transform(shortcut.confounder, **shortcut.params)
        except (TypeError, ValueError) as exc:
            raise MedxferInputError(f"params {shortcut.params} do not fit confounder "
                                    f"{shortcut.confounder!r}: {exc}", field="params") from None
    if source.multilabel:
        raise MedxferInputError(f"{source.name} is multi-label; a shortcut study confounds one "
                                "class of single-label data", field="target_class")
    if not 0 <= shortcut.target_class < source.info.n_classes:
        raise MedxferInputError(f"target_class {shortcut.target_class} is not a class of "
                                f"{source.name} (0..{source.info.n_classes - 1})",
                                field="target_class")
    if info.kind == "attribute":
        a = source.attribute(shortcut.attribute)
        if a.shape != (len(source),):
            raise MedxferInputError(f"attribute {shortcut.attribute!r} has shape {a.shape} for "
                                    f"{len(source)} images", field="attribute")


def confound_selection(source, sel, shortcut: ShortcutConfig, p_art: float, *, seed: int = 0,
                       fold: int | None = None):
    """A cell's :class:`~medxfer.data.protocol.Selection` with the confounder put in.

    ``train`` and ``val`` get share ``p_art`` of ``target_class`` confounded (role ``train``),
    ``test`` the same (``iid``), and a new o.o.d. part ``ood`` over the test rows the reversed
    correlation (:func:`confound`); ``labelled`` keeps its training rows with their marks.
    Image confounders keep every row; the ``attribute`` confounder samples rows, each set
    keeping as many ``target_class`` images as every share of ``shortcut.p_art`` allows
    (:func:`common_n_target`), so the cells of a study differ in the correlation only.

    Args:
        source: The cell's :class:`~medxfer.data.sources.Source`.
        sel: Its selection (:func:`medxfer.data.protocol.select_cell`); ``test`` None (a
            search cell) leaves out ``test`` and ``ood``.
        shortcut: ``protocol.shortcut``.
        p_art: The cell's share.
        seed, fold: The study's seed and the cell's fold (selection streams).

    Returns:
        The selection with confounded rows and ``applied`` (per part, ``(m,)`` bool aligned
        with its rows: True where the image carries the confounder / has the value).
    """
    from dataclasses import replace

    y = _labels_1d(source.labels)
    attr = source.attribute(shortcut.attribute) if shortcut.attribute else None
    kw = {"target_class": shortcut.target_class, "value": shortcut.value}

    def part(rows: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        a = None if attr is None else attr[rows]
        if name != "train" and not (y[rows] == shortcut.target_class).any():
            return _no_target(rows, a, PART_ROLES[name], shortcut.value)
        n = None
        if a is not None and name != "ood":
            n = common_n_target(y[rows], a, shortcut.p_art, **kw)
            if n < 1:
                where = "" if fold is None else f" of fold {fold}"
                raise MedxferInputError(
                    f"the {name} part{where} cannot keep class {shortcut.target_class} images "
                    f"at every share {shortcut.p_art} of {shortcut.attribute} = "
                    f"{shortcut.value} (it has too few with or without it): more images or "
                    "fewer extreme shares", field="attribute")
        c = confound(y[rows], shortcut.confounder, p_art=p_art, role=PART_ROLES[name],
                     attribute=a, n_target=n, seed=_seed(seed, fold, name), **kw)
        return rows[c.indices], c.applied

    train, applied = part(sel.train, "train")
    marks = dict(zip(train.tolist(), applied.tolist()))
    labelled = sel.labelled[np.isin(sel.labelled, train)]
    parts = {"train": (train, applied), "val": part(sel.val, "val"),
             "labelled": (labelled, np.array([marks[r] for r in labelled.tolist()], bool))}
    if sel.test is not None:
        parts["test"], parts["ood"] = part(sel.test, "test"), part(sel.test, "ood")
    rows = {k: r for k, (r, _) in parts.items()}
    return replace(sel, train=rows["train"], val=rows["val"], labelled=rows["labelled"],
                   test=rows.get("test"), ood=rows.get("ood"),
                   applied={k: m for k, (_, m) in parts.items()})


class ConfoundedSourceDataset(SourceDataset):
    """Rows of a source as a :class:`~medxfer.data.sources.SourceDataset`, the image
    confounder applied to the marked ones before ``transform`` (augmentation); each row's
    artifact is seeded by the row, so it is the same every epoch.

    Args:
        source, rows, transform: As for :class:`~medxfer.data.sources.SourceDataset`.
        applied: ``(m,)`` bool per row.
        confounder, params: Registry name and its transform's options (``attribute`` applies
            nothing: its rows were sampled).
        seed: Base of the per-row generator seeds of random confounders (Poisson noise).
    """

    def __init__(self, source, rows, applied, confounder: str, params: dict | None = None,
                 transform=None, seed: int = 0):
        super().__init__(source, rows, transform)
        self.applied = np.asarray(applied, bool).reshape(-1)
        if self.applied.shape != self.rows.shape:
            raise ValueError(f"{len(self.applied)} marks for {len(self.rows)} rows")
        info = confounder_info(confounder)
        self.confounder = confounder_transform(confounder, **(params or {})) \
            if info.kind == "image" else None
        self.seed = int(seed)

    def __getitem__(self, i: int):
        row = int(self.rows[i])
        x = self.source.image(row)
        if self.confounder is not None and self.applied[i]:
            x = self.confounder(x, generator=_row_generator(self.seed, row))
        if self.transform is not None:
            x = self.transform(x)
        return x, self.source.target(row)


def part_dataset(source, sel, part: str, transform=None, shortcut: ShortcutConfig | None = None,
                 seed: int = 0):
    """The dataset of ``part`` (``train``, ``val``, ``labelled``, ``test`` or ``ood``) of a
    selection: confounded where the selection marks it, else the source's rows as they are."""
    rows = getattr(sel, part)
    applied = sel.applied.get(part)
    if applied is None or shortcut is None:
        return source.dataset(rows, transform)
    return ConfoundedSourceDataset(source, rows, applied, shortcut.confounder, shortcut.params,
                                   transform, seed)
