"""cltci: contrastive learning with temporally correlated images (patient positives).

Seed ``003_4aa9fa56a835f729.txt`` sec. III-A, eq. 1-2: the positives of a view are the other
view of the same image *and* every view of other images of the same patient (patient ids from
the dataset's ``patients``); the loss is SupCon's with patient ids as labels.

* ``variant: simclr`` (CL-TCI-SimCLR, III-A.1): in-batch, every view contrasts with all other
  views of the batch (:class:`medxfer.losses.CLTCILoss`).
* ``variant: moco`` (CL-TCI-MoCo, III-A.2): each query contrasts with its own key from a
  momentum encoder plus a FIFO queue of keys that stores each key's patient id; queue keys of
  the query's patient are positives (:class:`medxfer.losses.CLTCIMoCoLoss`,
  :func:`medxfer.losses.momentum_update`; "the momentum update follows the original MoCo":
  m = 0.999, :data:`medxfer.losses.moco.MOMENTUM`).

The recipe (seed 003):

* Patient-grouped batches (``patient_batches``, on by default): every batch is packed from
  groups of ``images_per_patient`` images of one patient
  (:class:`medxfer.data.patient_batches.PatientBatchSampler`), so same-patient positives are in
  every batch instead of by chance. The paper samples "N chest X-rays ... from different
  patients" and relies on its large longitudinal set for repeats; grouping is how a small set
  gets them.
* Every image needs a patient id: a missing one (-1, blank, or no ids at all) is a
  :class:`~medxfer.errors.MedxferInputError` naming the field, since with it every pair of
  unknown-patient images would be a positive and training collapses silently.
  ``positives: simclr`` asks for SimCLR-style positives instead (the views of one image only:
  each image is its own "patient"); patient ids are then not read and batches not grouped.
* Sec. IV: SGD, lr 0.1, cosine schedule, tau 0.1, batch 32 (SimCLR) / 16 (MoCo), 500 epochs;
  augmentation rotation, translation and scale (``examples/recipe_cltci_seed003.yaml``).

The encoder is saved without the head (``encoder.pt``) for ``finetune`` and ``segment``.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Dataset

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, build_net
from medxfer.methods.registry import Method, register_method

#: Seed 003 sec. III-A.2: the key encoder's momentum is the original MoCo's.
MOMENTUM = 0.999


class CLTCIOptions(ContrastiveOptions):
    """``method_config`` of cltci.

    Attributes:
        variant: ``simclr`` (in-batch) or ``moco`` (momentum encoder + patient queue).
        momentum: MoCo's key-encoder momentum m (0.999).
        queue_size: MoCo dictionary size (keys kept with their patient ids).
        positives: ``patient`` (CL-TCI) or ``simclr`` (only the views of one image).
        patient_batches: pack batches from same-patient groups.
        images_per_patient: images of one patient per group.
    """

    variant: Literal["simclr", "moco"] = "simclr"
    momentum: float = Field(MOMENTUM, ge=0, le=1)
    queue_size: int = Field(4096, ge=1)
    positives: Literal["patient", "simclr"] = "patient"
    patient_batches: bool = True
    images_per_patient: int = Field(2, ge=2)


class ImageIds(Dataset):
    """Items ``(views, y, id)`` with the image's index (+ ``offset``) as its "patient": the
    SimCLR-style positives of ``positives: simclr``."""

    def __init__(self, base, offset: int = 0):
        self.base, self.offset = base, int(offset)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        views, y, _ = self.base[i]
        return views, y, torch.as_tensor(i + self.offset)


def check_patients(dataset, opts: CLTCIOptions, patient_column: str | None = None) -> None:
    """Refuse images without a patient id unless ``positives: simclr`` (module docstring).

    Raises:
        MedxferInputError: naming the ``.npz`` key (``<split>_patients``) or the manifest's
            patient column (``patient_column``, default ``patient_id``) and the file.
    """
    from medxfer.data.patient_batches import check_patient_ids

    base = getattr(dataset, "base", dataset)
    source = getattr(base, "source", None)  # a SourceDataset: rows of an .npz or a manifest
    where, field = None, patient_column or "patient_id"
    if source is not None:
        where = source.where
        if where.endswith(".npz"):
            splits = [] if source.splits is None else np.unique(source.splits[base.rows])
            field = f"{splits[0]}_patients" if len(splits) == 1 else "<split>_patients"
    check_patient_ids(getattr(base, "patients", None), n_images=len(base),
                      simclr_positives=opts.positives == "simclr", field=field, source=where)


def patient_loader(opts: CLTCIOptions, t):
    """``train_loader`` of :class:`ContrastiveParts`: patient-grouped batches, seeded by epoch."""

    def build(train_set, session, batch_size: int):
        from torch.utils.data import DataLoader

        from medxfer.data.patient_batches import PatientBatchSampler

        g = torch.Generator()  # re-seeded by start_epoch: (seed, epoch) fixes the batches
        sampler = PatientBatchSampler(train_set.patients, batch_size, opts.images_per_patient,
                                      generator=g, num_replicas=session.world_size,
                                      rank=session.world_rank)
        loader = DataLoader(train_set, batch_sampler=sampler, num_workers=t.num_workers,
                            generator=g)
        return session.prepare_loader(loader, shard=False)  # the sampler shards by rank

    return build


def _splits(cfg, opts: CLTCIOptions) -> tuple[Any, Any]:
    """The two-view train/val sets; ids are patients, or image indices for simclr positives."""
    from medxfer.data import TwoViews

    splits = contrastive.view_splits(cfg, TwoViews(contrastive.pipeline(cfg)))
    if opts.positives == "simclr":
        return ImageIds(splits["train"]), ImageIds(splits["val"], len(splits["train"]))
    for split in ("train", "val"):
        check_patients(splits[split], opts, cfg.data.patient_column)
    return splits["train"], splits["val"]


def build_parts(cfg, opts: CLTCIOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import CLTCILoss, CLTCIMoCoLoss, cltci_moco_loss

    net = build_net(cfg, opts, chans)
    train_set, val_set = _splits(cfg, opts)
    grouped = opts.patient_batches and opts.positives == "patient"
    common = dict(train_set=train_set, val_set=val_set,
                  train_loader=patient_loader(opts, cfg.train) if grouped else None)
    if opts.variant == "simclr":
        criterion = CLTCILoss(temperature=opts.temperature)

        def loss(net, batch, train: bool):
            (v1, v2), _, patients = batch
            z = net(torch.cat([v1, v2]))
            return criterion(torch.stack([z[: len(v1)], z[len(v1):]], dim=1), patients)

        return ContrastiveParts(net=net, loss=loss, **common)

    key_net = copy.deepcopy(net).requires_grad_(False)
    moco = CLTCIMoCoLoss(temperature=opts.temperature, queue_size=opts.queue_size,
                         dim=opts.proj_out_dim)

    def loss(net, batch, train: bool):
        (v1, v2), _, patients = batch
        q = net(v1)
        k = contrastive.momentum_keys(net, key_net, v2, opts.momentum, train)
        if train:
            return moco(q, k, patients)  # contrasts with the queue, then enqueues k
        keys, ids = moco.queue.get()  # validation: leave the queue untouched
        return cltci_moco_loss(q, k, patients, keys, ids, opts.temperature)

    return ContrastiveParts(net=net, loss=loss, extra={"key_net": key_net, "queue": moco},
                            **common)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """CL-TCI pretraining (SimCLR or MoCo variant) on ``data.flag``."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="cltci", train_loop_per_worker=train_loop_per_worker, config_schema=CLTCIOptions,
    defaults=contrastive.DEFAULTS,
    description="CL-TCI: same-patient positives, in-batch (simclr) or momentum queue (moco)"))
