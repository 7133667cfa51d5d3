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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from medxfer.data.confounders import confounder_info, confounder_transform
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
    if n_target is None:  # the largest class size this p_art allows
        n_target = max((n for n in range(int(target.sum()), 0, -1)
                        if round(p_art * n) <= len(with_v)
                        and n - round(p_art * n) <= len(without_v)), default=0)
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
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + row)
            x = self.transform(x, generator=g)
        if self.base.transform is not None:
            x = self.base.transform(x)
        return x, self.base.target(row)
