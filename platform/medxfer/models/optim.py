"""Optimisation parts of the seed-001 SwAV recipe: LARS, the warm-up + cosine lr schedule by
iteration, and the prototype freeze counted in iterations.

Seed 001 (``001_a9715376ac5cbd5d.txt``) Table I (2D): base lr 0.6, final lr 0.0006, prototypes
frozen for the first 10,000 iterations, weight decay 1e-6, 100 epochs, batch 32; "several
parameters are inherited from SwAV [1]" (sec. IV-B), whose recipe is LARS (trust coefficient
0.001, no clipping) around SGD with momentum 0.9, a linear warm-up from ``start_warmup`` to the
base lr, then a cosine decay to the final lr, all per iteration. The seed's table lists no
warm-up length; SwAV's default (10 epochs from 0) is ours, expressed in iterations.

[0] SwAV, 2020, https://arxiv.org/abs/2006.09882  [1] LARS, 2017, https://arxiv.org/abs/1708.03888
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

BASE_LR = 0.6
FINAL_LR = 0.0006
FREEZE_PROTOTYPES_ITERS = 10_000
WEIGHT_DECAY = 1e-6
TRUST_COEFFICIENT = 0.001


def build_lars(params: Iterable[nn.Parameter], lr: float = BASE_LR, *, momentum: float = 0.9,
               weight_decay: float = WEIGHT_DECAY,
               trust_coefficient: float = TRUST_COEFFICIENT) -> torch.optim.Optimizer:
    """LARS (timm's ``Lars``) as SwAV uses it: SGD momentum 0.9, trust 0.001, no clipping, the
    layer-wise rate applied to every parameter (``always_adapt``)."""
    from timm.optim import Lars

    return Lars(list(params), lr=lr, momentum=momentum, weight_decay=weight_decay,
                trust_coeff=trust_coefficient, trust_clip=False, always_adapt=True)


def warmup_cosine_lr(iteration: int, total_iters: int, *, base_lr: float = BASE_LR,
                     final_lr: float = FINAL_LR, warmup_iters: int = 0,
                     start_warmup: float = 0.0) -> float:
    """SwAV's learning rate at 0-based ``iteration``.

    Linear from ``start_warmup`` to ``base_lr`` over ``warmup_iters`` iterations, then
    ``final_lr + (base_lr - final_lr) (1 + cos(pi t / T)) / 2`` with t the iterations since the
    warm-up and T = ``total_iters - warmup_iters``; ``final_lr`` from the last iteration on.
    """
    if total_iters < 1 or not 0 <= warmup_iters <= total_iters:
        raise ValueError(f"need total_iters >= 1 and 0 <= warmup_iters <= total_iters, got "
                         f"{total_iters}, {warmup_iters}.")
    if iteration < warmup_iters:
        return start_warmup + (base_lr - start_warmup) * iteration / warmup_iters
    t, span = iteration - warmup_iters, total_iters - warmup_iters
    if span == 0 or t >= span:
        return final_lr
    return final_lr + 0.5 * (base_lr - final_lr) * (1 + math.cos(math.pi * t / span))


class WarmupCosine:
    """:func:`warmup_cosine_lr` as a picklable ``LambdaLR`` multiplier (lr / base_lr), for a
    scheduler stepped once per *iteration*.

    Args:
        total_iters, warmup_iters, base_lr, final_lr, start_warmup: As :func:`warmup_cosine_lr`.
    """

    def __init__(self, total_iters: int, *, warmup_iters: int = 0, base_lr: float = BASE_LR,
                 final_lr: float = FINAL_LR, start_warmup: float = 0.0):
        warmup_cosine_lr(0, total_iters, warmup_iters=warmup_iters)  # validate
        if base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {base_lr}.")
        self.total_iters, self.warmup_iters = int(total_iters), int(warmup_iters)
        self.base_lr, self.final_lr, self.start_warmup = base_lr, final_lr, start_warmup

    def __call__(self, iteration: int) -> float:
        return warmup_cosine_lr(iteration, self.total_iters, base_lr=self.base_lr,
                                final_lr=self.final_lr, warmup_iters=self.warmup_iters,
                                start_warmup=self.start_warmup) / self.base_lr


def prototypes_frozen(iteration: int, freeze_iters: int = FREEZE_PROTOTYPES_ITERS) -> bool:
    """True during the first ``freeze_iters`` iterations (0-based ``iteration``)."""
    return iteration < freeze_iters


def freeze_prototypes_step(prototypes: nn.Module, iteration: int,
                           freeze_iters: int = FREEZE_PROTOTYPES_ITERS) -> bool:
    """Call between ``backward()`` and ``optimizer.step()``: while frozen, drop the
    prototypes' gradients (``grad = None``) so the optimiser skips them entirely (no update, no
    weight decay, no momentum), as SwAV does. Returns whether they were frozen."""
    frozen = prototypes_frozen(iteration, freeze_iters)
    if frozen:
        for p in prototypes.parameters():
            p.grad = None
    return frozen
