"""moco: plain MoCo v2, momentum contrast with a FIFO queue of negatives.

Seed ``003_4aa9fa56a835f729.txt`` Table I, row "MoCo" (sec. IV, baseline (4): "introduces
momentum update and dictionary look-up"): CL-TCI-MoCo without patient positives. A query
q = net(view 1) from the online encoder + MLP head contrasts with its key k = key_net(view 2)
from the momentum encoder (theta_k <- m theta_k + (1 - m) theta_q, m = 0.999, before the key
is computed) and with the queue of earlier keys as negatives (InfoNCE,
:class:`medxfer.losses.MoCoLoss`); the keys are enqueued after the step. MoCo v2's changes
(Chen et al. 2020): the MLP head (``proj_layers: 2``), tau 0.2, the cosine schedule (the
contrastive default); seed 003 runs its baselines with tau 0.1, batch 16, SGD lr 0.1, which the
example config ``examples/train_moco.yaml`` uses. Validation contrasts with the queue as it
stands, without updating it or the key encoder. The encoder is saved without the head
(``encoder.pt``) for ``finetune`` and ``segment``.

Departures: the queue is per rank under several workers and BatchNorm is not shuffled across
GPUs (MoCo's "shuffling BN"); on one worker neither matters.

[0] MoCo, 2020, https://arxiv.org/abs/1911.05722  [1] MoCo v2, 2020, https://arxiv.org/abs/2003.04297
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, build_net
from medxfer.methods.registry import Method, register_method


class MoCoOptions(ContrastiveOptions):
    """``method_config`` of moco (MoCo v2 defaults).

    Attributes:
        temperature: tau (MoCo v2: 0.2).
        momentum: key-encoder momentum m (0.999).
        queue_size: K keys kept as negatives (MoCo: 65536; our default suits small sets).
    """

    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.999, ge=0, le=1)
    queue_size: int = Field(4096, ge=1)


def build_parts(cfg, opts: MoCoOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import MoCoLoss, moco_loss

    net = build_net(cfg, opts, chans)
    key_net = copy.deepcopy(net).requires_grad_(False)
    criterion = MoCoLoss(temperature=opts.temperature, queue_size=opts.queue_size,
                         dim=opts.proj_out_dim)

    def loss(net, batch, train: bool):
        (v1, v2), _, _ = batch
        q = net(v1)
        k = contrastive.momentum_keys(net, key_net, v2, opts.momentum, train)
        if train:
            return criterion(q, k)  # contrasts with the queue, then enqueues k
        queue, _ = criterion.memory_bank.get()  # validation: the queue stays as it is
        return moco_loss(q, k, queue, opts.temperature)

    return ContrastiveParts(net=net, loss=loss, extra={"key_net": key_net, "queue": criterion})


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """MoCo v2 pretraining on ``data.flag``; see the module docstring."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="moco", train_loop_per_worker=train_loop_per_worker, config_schema=MoCoOptions,
    defaults=contrastive.DEFAULTS,
    description="MoCo v2: momentum encoder + queue of negatives; saves the encoder"))
