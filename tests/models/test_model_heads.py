"""Heads: shapes, SimCLR layout, prototype normalisation and modality split."""

import pytest
import torch

from medxfer.models import LinearClassifier, ProjectionHead, SwaVPrototypes


def test_projection_head_simclr_default_layout():
    head = ProjectionHead(64, hidden_dim=32, out_dim=16)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.randn(4, 64)).shape == (4, 16)
    deep = ProjectionHead(8, 8, 4, num_layers=3, batch_norm=False)
    assert len([m for m in deep if isinstance(m, torch.nn.Linear)]) == 3
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(8, num_layers=0)


def test_linear_classifier():
    assert LinearClassifier(10, 3)(torch.randn(2, 10)).shape == (2, 3)


def test_prototypes_scores_are_cosines():
    torch.manual_seed(0)
    protos = SwaVPrototypes(dim=6, n_prototypes=5)
    with torch.no_grad():
        protos.weight.mul_(3.0)  # unnormalised storage does not change the scores
    z = torch.randn(4, 6)
    s = protos(z)
    assert s.shape == (4, 5) and s.abs().max() <= 1 + 1e-6
    expected = (torch.nn.functional.normalize(z, dim=1)
                @ torch.nn.functional.normalize(protos.weight[0], dim=1).T)
    assert torch.allclose(s, expected, atol=1e-6)
    protos.normalize_()
    assert torch.allclose(protos.weight.norm(dim=2), torch.ones(1, 5))


def test_prototypes_per_modality_split():
    protos = SwaVPrototypes(dim=3, n_prototypes=4, n_modalities=2)
    z = torch.randn(4, 3)
    s = protos(z)
    assert torch.allclose(s[:2], protos(z[:2], modality=0))
    assert torch.allclose(s[2:], protos(z[2:], modality=1))
    with pytest.raises(ValueError, match="multiple of n_modalities"):
        protos(torch.randn(3, 3))
