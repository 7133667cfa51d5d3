"""MAE loss (He et al. 2021 sec. 3) and its helpers against slow transcriptions."""

import pytest
import torch

from medxfer.losses import (MAELoss, mae_loss, mask_from_indices, patchify, random_token_mask,
                            unpatchify)


def test_patchify_order_and_roundtrip():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    p = patchify(x, 2)
    assert p.shape == (2, 6, 12)
    # patch 4 = row 1, col 1: pixels x[:, :, 2:4, 2:4] laid out as (p, p, C)
    assert torch.equal(p[0, 4], x[0, :, 2:4, 2:4].permute(1, 2, 0).reshape(-1))
    assert torch.equal(unpatchify(p, 2, 3, grid=(2, 3)), x)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        patchify(x, 4)


def test_random_mask_partitions_tokens_reproducibly():
    keep, masked = random_token_mask(5, 16, 0.75, torch.Generator().manual_seed(3))
    assert keep.shape == (5, 4) and masked.shape == (5, 12)
    for k, m in zip(keep, masked):
        assert sorted(k.tolist() + m.tolist()) == list(range(16))
    keep2, _ = random_token_mask(5, 16, 0.75, torch.Generator().manual_seed(3))
    assert torch.equal(keep, keep2)
    assert mask_from_indices(masked, 16).sum(1).tolist() == [12] * 5


def _slow_mae(pred, target, mask, norm):
    num, den = 0.0, 0
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            if not mask[b, i]:
                continue
            t = [float(v) for v in target[b, i]]
            if norm:
                mu = sum(t) / len(t)
                var = sum((v - mu) ** 2 for v in t) / (len(t) - 1)
                t = [(v - mu) / (var + 1e-6) ** 0.5 for v in t]
            num += sum((float(p) - v) ** 2 for p, v in zip(pred[b, i], t)) / len(t)
            den += 1
    return num / den


@pytest.mark.parametrize("norm", [False, True])
def test_loss_matches_slow_transcription(norm):
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(3, 8, 5, generator=g, dtype=torch.float64), \
        torch.randn(3, 8, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 8, generator=g) < 0.6
    assert float(MAELoss(norm)(pred, target, mask)) == pytest.approx(
        _slow_mae(pred, target, mask, norm), rel=1e-9)


def test_visible_patches_do_not_count():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 4, generator=g)
    mask = torch.tensor([[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    other = pred.clone()
    other[~mask] = 100.0
    assert torch.allclose(mae_loss(pred, target, mask), mae_loss(other, target, mask))
    perfect = target.clone()
    perfect[~mask] = -5.0
    assert float(mae_loss(perfect, target, mask)) == 0.0
    with pytest.raises(ValueError, match="no masked patch"):
        mae_loss(pred, target, torch.zeros_like(mask))
