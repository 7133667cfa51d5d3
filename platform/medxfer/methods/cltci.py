"""cltci: contrastive learning with temporally correlated images (patient positives).

Seed ``003_4aa9fa56a835f729.txt`` sec. III-A, eq. 1-2: the positives of a view are the other
view of the same image *and* every view of other images of the same patient (patient ids from
the dataset's ``patients``); the loss is SupCon's with patient ids as labels.

* ``variant: simclr`` (CL-TCI-SimCLR, III-A.1): in-batch, every view contrasts with all other
  views of the batch (:class:`medxfer.losses.CLTCILoss`).
* ``variant: moco`` (CL-TCI-MoCo, III-A.2): each query contrasts with its own key from a
  momentum encoder plus a FIFO queue of keys that stores each key's patient id; queue keys of
  the query's patient are positives (:class:`medxfer.losses.CLTCIMoCoLoss`,
  :func:`medxfer.losses.momentum_update`, "the momentum update follows the original MoCo").

Seed 003 sec. IV: SGD, lr 0.1, cosine schedule, tau 0.1, batch 32 (SimCLR) / 16 (MoCo). The
encoder is saved without the head (``encoder.pt``) for fine-tuning.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from pydantic import Field

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, build_net
from medxfer.methods.registry import Method, register_method
from medxfer.methods.session import unwrap


class CLTCIOptions(ContrastiveOptions):
    """``method_config`` of cltci.

    Attributes:
        variant: ``simclr`` (in-batch) or ``moco`` (momentum encoder + patient queue).
        momentum: MoCo's key-encoder momentum m.
        queue_size: MoCo dictionary size (keys kept with their patient ids).
    """

    variant: Literal["simclr", "moco"] = "simclr"
    momentum: float = Field(0.99, ge=0, le=1)
    queue_size: int = Field(4096, ge=1)


def build_parts(cfg, opts: CLTCIOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import CLTCILoss, CLTCIMoCoLoss, cltci_moco_loss, momentum_update

    net = build_net(cfg, opts, chans)
    if opts.variant == "simclr":
        criterion = CLTCILoss(temperature=opts.temperature)

        def loss(net, batch, train: bool):
            (v1, v2), _, patients = batch
            z = net(torch.cat([v1, v2]))
            return criterion(torch.stack([z[: len(v1)], z[len(v1):]], dim=1), patients)

        return ContrastiveParts(net=net, loss=loss)

    key_net = copy.deepcopy(net).requires_grad_(False)
    moco = CLTCIMoCoLoss(temperature=opts.temperature, queue_size=opts.queue_size,
                         dim=opts.proj_out_dim)

    def loss(net, batch, train: bool):
        (v1, v2), _, patients = batch
        q = net(v1)
        with torch.no_grad():
            if train:
                momentum_update(unwrap(net), key_net, opts.momentum)
            k = key_net(v2)
        if train:
            return moco(q, k, patients)  # contrasts with the queue, then enqueues k
        keys, ids = moco.queue.get()  # validation: leave the queue untouched
        return cltci_moco_loss(q, k, patients, keys, ids, opts.temperature)

    return ContrastiveParts(net=net, loss=loss, extra={"key_net": key_net, "queue": moco})


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """CL-TCI pretraining (SimCLR or MoCo variant) on ``data.flag``."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="cltci", train_loop_per_worker=train_loop_per_worker, config_schema=CLTCIOptions,
    defaults=contrastive.DEFAULTS,
    description="CL-TCI: same-patient positives, in-batch (simclr) or momentum queue (moco)"))
