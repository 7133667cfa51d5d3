"""Multi-class soft Dice + CE against a slow transcription; background handling."""

import pytest
import torch
import torch.nn.functional as F

from medxfer.losses import DiceCELoss, soft_dice_per_class


def _slow_soft_dice(logits, target, smooth):
    p = logits.softmax(1)
    b, k, h, w = logits.shape
    out = []
    for c in range(k):
        inter = den = 0.0
        for i in range(b):
            for y in range(h):
                for x in range(w):
                    t = 1.0 if int(target[i, y, x]) == c else 0.0
                    inter += float(p[i, c, y, x]) * t
                    den += float(p[i, c, y, x]) + t
        out.append((2 * inter + smooth) / (den + smooth))
    return out


def test_soft_dice_and_total_match_slow():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 4, 5), generator=g)
    slow = _slow_soft_dice(logits, target, 1e-5)
    assert soft_dice_per_class(logits, target).tolist() == pytest.approx(slow, rel=1e-9)
    ce = float(F.cross_entropy(logits, target))
    fg = DiceCELoss()(logits, target)
    assert float(fg) == pytest.approx(ce + 1 - (slow[1] + slow[2]) / 2, rel=1e-9)
    allc = DiceCELoss(include_background=True, ce_weight=0.0)(logits, target)
    assert float(allc) == pytest.approx(1 - sum(slow) / 3, rel=1e-9)


def test_perfect_prediction_has_zero_dice_term_and_gradients_flow():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1:3, 1:3] = 1
    logits = (F.one_hot(target, 2).permute(0, 3, 1, 2).double() * 40 - 20)
    assert float(DiceCELoss(ce_weight=0.0)(logits, target)) == pytest.approx(0.0, abs=1e-9)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    DiceCELoss()(x, target).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="not both 0"):
        DiceCELoss(0.0, 0.0)
