"""SupCon (seed 002 L_out^sup) against the equation: class and multi-hot labels, n views."""

import math

import pytest
import torch

from medxfer.losses import SupConLoss, supcon_loss


def _slow_supcon(features, labels, tau, multilabel):
    """L_out^sup averaged over anchors with |P(i)| > 0; z normalised."""
    b, v, _ = features.shape
    items = [(torch.nn.functional.normalize(features[s, k], dim=0), s)
             for k in range(v) for s in range(b)]

    def positive(si, sp):
        if si == sp:
            return True
        if labels is None:
            return False
        if multilabel:
            return bool((labels[si] * labels[sp]).sum() > 0)
        return bool(labels[si] == labels[sp])

    losses = []
    for i, (zi, si) in enumerate(items):
        a_idx = [a for a in range(len(items)) if a != i]
        p_idx = [p for p in a_idx if positive(si, items[p][1])]
        if not p_idx:
            continue
        den = sum(math.exp(float(zi @ items[a][0]) / tau) for a in a_idx)
        losses.append(-sum(math.log(math.exp(float(zi @ items[p][0]) / tau) / den)
                           for p in p_idx) / len(p_idx))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("views", [1, 2, 3])
def test_class_labels_match_slow(views):
    g = torch.Generator().manual_seed(views)
    f = torch.randn(6, views, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    assert float(supcon_loss(f, y, 0.2)) == pytest.approx(_slow_supcon(f, y, 0.2, False), rel=1e-9)


def test_multilabel_positives_share_one_label():
    g = torch.Generator().manual_seed(3)
    f = torch.randn(5, 2, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 0]])
    expected = _slow_supcon(f, y, 0.1, True)
    assert float(SupConLoss(0.1)(f, y)) == pytest.approx(expected, rel=1e-9)
    # Treating the multi-hot rows as exact classes would give a different loss.
    as_class = torch.tensor([5, 2, 1, 0, 6])
    assert float(supcon_loss(f, as_class, 0.1)) != pytest.approx(expected, rel=1e-3)


def test_no_labels_two_views_is_nt_xent():
    from medxfer.losses import nt_xent_loss
    g = torch.Generator().manual_seed(4)
    z0, z1 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    assert torch.allclose(supcon_loss(torch.stack([z0, z1], 1), None, 0.3),
                          nt_xent_loss(z0, z1, 0.3), atol=1e-6)


def test_base_temperature_scales_and_view_swap_symmetry():
    g = torch.Generator().manual_seed(5)
    f = torch.randn(4, 2, 3, generator=g)
    y = torch.tensor([0, 0, 1, 1])
    loss = supcon_loss(f, y, 0.1)
    assert torch.allclose(supcon_loss(f, y, 0.1, base_temperature=0.07), loss * 0.1 / 0.07)
    assert torch.allclose(supcon_loss(f.flip(1), y, 0.1), loss)


def test_gradients_and_no_positive_error():
    f = torch.randn(4, 2, 3, requires_grad=True)
    supcon_loss(f, torch.tensor([0, 1, 2, 3]), 0.1).backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="No anchor has a positive"):
        supcon_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))
