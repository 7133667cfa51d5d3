"""Patient-grouped batches for CL-TCI, and the check that every image has a patient id.

Seed 003 (``003_4aa9fa56a835f729.txt`` sec. III-A): every image of the same patient in the batch
(or the MoCo dictionary) is a positive. With uniformly shuffled batches such pairs occur only by
chance, so :class:`PatientBatchSampler` builds each batch from groups of ``images_per_patient``
images of one patient:

* per epoch, each patient's images are shuffled and cut into groups of ``images_per_patient``
  (a remainder of one image joins the patient's last group; a patient with a single image is
  a group of one);
* groups are shuffled and packed into batches of at most ``batch_size`` images: a batch starts
  with a group of >= 2 images while any is left, then is filled by first fit from the shuffled
  groups (so batches are full whenever small groups allow); every image appears once per epoch;
* the order depends only on (seed, epoch): :meth:`set_epoch`, or a ``generator`` shared with
  the DataLoader, which :func:`medxfer.methods.common.start_epoch` re-seeds every epoch, so a
  resumed run sees the same batches;
* distributed: ``num_replicas``/``rank`` give each rank every ``num_replicas``-th batch of the
  same global list (whole groups stay on one rank; the batch count is cut to a multiple of
  ``num_replicas``); build the loader without the trainer's own sharding.

:func:`check_patient_ids` refuses missing ids (-1 or blank): with them every "patient" pair
would be a positive and training collapses silently, unless SimCLR-style positives (the two
views of one image only) are asked for.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from medxfer.errors import MedxferInputError

#: How far first fit looks ahead for a group that fits the rest of a batch.
_LOOKAHEAD = 64


def _patient_codes(patients: Sequence | np.ndarray) -> np.ndarray:
    """Patient ids of any type -> int codes (equal ids, equal codes)."""
    _, codes = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    return codes.reshape(-1)


def missing_patient_ids(patients: Sequence | np.ndarray | None) -> np.ndarray:
    """Bool per image: the id is missing (-1, blank, NaN or no ids at all)."""
    if patients is None:
        return np.ones(0, dtype=bool)
    a = np.asarray(patients)
    if a.dtype.kind in "iu":
        return a < 0
    if a.dtype.kind == "f":
        return np.isnan(a) | (a < 0)
    s = np.char.strip(a.astype(str))
    return (s == "") | (s == "-1") | (np.char.lower(s) == "nan")


def check_patient_ids(patients: Sequence | np.ndarray | None, *, n_images: int | None = None,
                      simclr_positives: bool = False, field: str = "patient_id",
                      source: str | None = None) -> None:
    """Raise unless every image has a patient id (or SimCLR-style positives are asked for).

    Args:
        patients: Per-image ids, or None when the data has none.
        n_images: Number of images (for the message when ``patients`` is None).
        simclr_positives: The user asked for the two views of one image as the only positives:
            missing ids are then fine.
        field: The column / key / option to name (e.g. ``patient_id``, ``train_patients``).
        source: The file the ids come from.

    Raises:
        MedxferInputError: naming ``field`` and how to fix it.
    """
    if simclr_positives:
        return
    fix = ("CL-TCI needs the patient of every image (same-patient images are positives); add "
           "the ids, or set method_config.positives: simclr to use only the two views of an "
           "image as positives")
    if patients is None:
        count = f" for {n_images} images" if n_images is not None else ""
        raise MedxferInputError(f"no patient ids{count}; {fix}", path=source, field=field)
    miss = missing_patient_ids(patients)
    if miss.any():
        raise MedxferInputError(f"patient id missing (-1 or blank) for {int(miss.sum())} of "
                                f"{len(miss)} images (first at index {int(np.argmax(miss))}); "
                                f"{fix}", path=source, field=field)


class PatientBatchSampler(Sampler[list[int]]):
    """Batches of patient groups (module docstring). Pass as ``DataLoader(batch_sampler=...)``.

    Args:
        patients: Per-image patient ids (ints or strings), none missing.
        batch_size: Maximum images per batch.
        images_per_patient: Images of one patient per group (>= 2).
        seed: Seed of the order (with the epoch).
        generator: Share the DataLoader's generator instead (re-seeded by ``start_epoch``).
        drop_last: Drop a last batch smaller than ``batch_size``.
        num_replicas, rank: Distributed: this rank's share of the batches.
    """

    def __init__(self, patients: Sequence | np.ndarray, batch_size: int,
                 images_per_patient: int = 2, *, seed: int = 0,
                 generator: torch.Generator | None = None, drop_last: bool = False,
                 num_replicas: int = 1, rank: int = 0):
        if images_per_patient < 2 or batch_size < images_per_patient:
            raise ValueError(f"need images_per_patient >= 2 and batch_size >= "
                             f"images_per_patient, got {images_per_patient}, {batch_size}.")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas}).")
        miss = missing_patient_ids(patients)
        if miss.any():
            raise ValueError(f"{int(miss.sum())} images have no patient id; check them with "
                             "check_patient_ids first.")
        self.codes = _patient_codes(patients)
        self.batch_size, self.k = int(batch_size), int(images_per_patient)
        self.seed, self.epoch, self.generator = int(seed), 0, generator
        self.drop_last, self.num_replicas, self.rank = bool(drop_last), int(num_replicas), int(rank)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (when no shared generator is given)."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        if self.generator is not None:
            return self.generator
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def _groups(self, g: torch.Generator) -> list[list[int]]:
        order = torch.randperm(len(self.codes), generator=g).numpy()
        by_patient: dict[int, list[int]] = {}
        for i in order:  # shuffled, so each patient's list is in random order
            by_patient.setdefault(int(self.codes[i]), []).append(int(i))
        groups = []
        for imgs in by_patient.values():
            chunks = [imgs[j:j + self.k] for j in range(0, len(imgs), self.k)]
            if len(chunks) > 1 and len(chunks[-1]) == 1:
                last = chunks.pop()
                chunks[-1] += last
            groups += chunks
        perm = torch.randperm(len(groups), generator=g).tolist()
        return [groups[j] for j in perm]

    def _batches(self) -> list[list[int]]:
        groups, batches = self._groups(self._generator()), []
        while groups:
            first = next((j for j, gr in enumerate(groups) if len(gr) >= 2), 0)
            batch = list(groups.pop(first))
            j = 0
            while j < min(len(groups), _LOOKAHEAD) and len(batch) < self.batch_size:
                if len(batch) + len(groups[j]) <= self.batch_size:
                    batch += groups.pop(j)
                else:
                    j += 1
            batches.append(batch)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[:usable][self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        # The packing depends on the epoch's order; count it for the current epoch.
        if self.generator is not None:
            state = self.generator.get_state()
            n = len(self._batches())
            self.generator.set_state(state)
            return n
        return len(self._batches())
