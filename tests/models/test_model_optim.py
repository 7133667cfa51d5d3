"""Seed-001 SwAV optimisation parts: lr schedule, LARS step, prototype freeze by iteration."""

import math

import pytest
import torch

from medxfer.models import SwaVPrototypes
from medxfer.models.optim import (WarmupCosine, build_lars, freeze_prototypes_step,
                                  warmup_cosine_lr)


def test_schedule_warms_up_then_decays_to_final_lr():
    lr = [warmup_cosine_lr(i, 100, warmup_iters=10, start_warmup=0.0) for i in range(101)]
    assert lr[0] == 0.0 and lr[5] == pytest.approx(0.3) and lr[10] == pytest.approx(0.6)
    assert lr[55] == pytest.approx(0.0006 + 0.5 * (0.6 - 0.0006) * (1 + math.cos(math.pi / 2)))
    assert lr[100] == pytest.approx(0.0006) and all(a >= b for a, b in zip(lr[10:], lr[11:]))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(100, warmup_iters=10))
    seen = []
    for _ in range(20):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx(lr[:20])


def test_lars_step_matches_the_trust_ratio_by_hand():
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # |p| = 5
    p.grad = torch.tensor([0.0, 1.0])  # |g| = 1
    build_lars([p], lr=0.5, weight_decay=0.1, trust_coefficient=0.001).step()
    ratio = 0.001 * 5 / (1 + 0.1 * 5)
    expected = (torch.tensor([3.0, 4.0])
                - 0.5 * ratio * (torch.tensor([0.0, 1.0]) + 0.1 * torch.tensor([3.0, 4.0])))
    assert torch.allclose(p.detach(), expected)


def test_prototypes_frozen_for_the_first_n_iterations():
    torch.manual_seed(0)
    encoder, protos = torch.nn.Linear(6, 4), SwaVPrototypes(4, 5)
    opt = build_lars(list(encoder.parameters()) + list(protos.parameters()), lr=0.5,
                     weight_decay=0.1)
    start, enc0 = protos.weight.detach().clone(), encoder.weight.detach().clone()
    frozen = []
    for it in range(5):
        loss = protos(encoder(torch.randn(8, 6))).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        frozen.append(freeze_prototypes_step(protos, it, freeze_iters=3))
        opt.step()
        if it == 2:
            assert torch.equal(protos.weight, start)  # no update, no weight decay, no momentum
            assert not torch.equal(encoder.weight, enc0)
    assert frozen == [True, True, True, False, False]
    assert not torch.equal(protos.weight, start)
