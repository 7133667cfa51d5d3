"""supcon: supervised contrastive pretraining (L_out^sup), then a linear probe.

Seed ``002_d7fb762c9e967338.txt``: the supervised contrastive loss L_out^sup over two views of
every image, where "two images are considered a positive pair if they share at least one
disease label" (multi-label targets; single-label: the same class); "after contrastive
pretraining, a linear classifier (only the last layer) is trained on top of the frozen backbone
using BCE loss" (CE for single-label targets). The probe's val/test metrics are the final step's
``val_*``/``test_*`` (see :mod:`medxfer.methods.contrastive`).

[0] SupCon, 2020, https://arxiv.org/abs/2004.11362
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveOptions, ContrastiveParts, build_net
from medxfer.methods.registry import Method, register_method


class SupConOptions(ContrastiveOptions):
    """``method_config`` of supcon: tau 0.1 and a 30-epoch linear probe by default."""

    temperature: float = Field(0.1, gt=0)
    probe_epochs: int = Field(30, ge=1)


def build_parts(cfg, opts: SupConOptions, chans: int) -> ContrastiveParts:
    from medxfer.losses import SupConLoss

    criterion = SupConLoss(temperature=opts.temperature)

    def loss(net, batch, train: bool):
        (v1, v2), y, _ = batch
        z = net(torch.cat([v1, v2]))
        features = torch.stack([z[: len(v1)], z[len(v1):]], dim=1)  # (B, 2, D)
        return criterion(features, y)

    # the loss reads labels: under a study's label fraction only labelled images pretrain
    return ContrastiveParts(net=build_net(cfg, opts, chans), loss=loss, labelled_only=True)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """SupCon pretraining + linear probe on ``data.flag``."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="supcon", train_loop_per_worker=train_loop_per_worker, config_schema=SupConOptions,
    defaults=contrastive.DEFAULTS,
    description="supervised contrastive pretraining (multi-label: >= 1 shared label) + probe"))
