"""simclr: contrastive pretraining with NT-Xent over two augmented views.

Seed ``000_3dd3de5c534b555f.txt`` sec. 3.2, eq. 9: each image yields two views, encoder +
non-linear projection head map them to z, and NT-Xent (cosine similarity / tau, every other
view in the batch a negative) pulls the pair together; afterwards "the transformation head is
discarded, and the feature encoder is utilized for subsequent supervised training": the final
checkpoint's ``encoder.pt`` is what ``finetune`` loads with ``model.weights``. Labels are not
used (an optional linear probe scores the encoder, ``probe_epochs``).

[0] SimCLR, 2020, https://arxiv.org/abs/2002.05709
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, build_net
from medxfer.methods.registry import Method, register_method


class SimCLROptions(ContrastiveOptions):
    """``method_config`` of simclr (temperature default 0.5, SimCLR's)."""

    temperature: float = Field(0.5, gt=0)


def build_parts(cfg, opts: SimCLROptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import NTXentLoss

    criterion = NTXentLoss(temperature=opts.temperature)

    def loss(net, batch, train: bool):
        (v1, v2), _, _ = batch
        z = net(torch.cat([v1, v2]))  # one forward: BatchNorm sees the whole 2N batch
        return criterion(z[: len(v1)], z[len(v1):])

    return ContrastiveParts(net=build_net(cfg, opts, chans), loss=loss)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """SimCLR pretraining on ``data.flag``; see :mod:`medxfer.methods.contrastive`."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="simclr", train_loop_per_worker=train_loop_per_worker, config_schema=SimCLROptions,
    defaults=contrastive.DEFAULTS,
    description="self-supervised NT-Xent pretraining (two views); saves the encoder"))
