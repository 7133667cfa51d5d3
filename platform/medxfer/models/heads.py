"""Heads on top of a backbone's flat embedding: classifier, projection, SwAV prototypes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.batch_layout import split_modalities


class LinearClassifier(nn.Linear):
    """Linear classifier (linear probing / fine-tuning head).

    Args:
        in_dim: Embedding dimension of the backbone.
        num_classes: Number of outputs (classes, or labels for multi-label BCE).
    """

    def __init__(self, in_dim: int, num_classes: int):
        if in_dim < 1 or num_classes < 1:
            raise ValueError(f"in_dim and num_classes must be >= 1, got {in_dim}, {num_classes}.")
        super().__init__(in_dim, num_classes)


class ProjectionHead(nn.Sequential):
    """MLP projection head; the default is SimCLR's 2 layers (Linear-BN-ReLU-Linear).

    Shape: (B, in_dim) -> (B, out_dim). Dropped after pretraining (seed 000 sec. 3.2).

    Args:
        in_dim: Input (embedding) dimension.
        hidden_dim: Width of the hidden layers.
        out_dim: Output dimension (SimCLR: 128).
        num_layers: Number of Linear layers, >= 1 (1 = a linear projection).
        batch_norm: BatchNorm1d after each hidden Linear.

    [0] SimCLR, 2020, https://arxiv.org/abs/2002.05709
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128,
                 num_layers: int = 2, batch_norm: bool = True):
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        layers: list[nn.Module] = []
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        for i in range(num_layers):
            last = i == num_layers - 1
            layers.append(nn.Linear(dims[i], dims[i + 1], bias=last or not batch_norm))
            if not last:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(dims[i + 1]))
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SwaVPrototypes(nn.Module):
    """Trainable L2-normalised prototypes C, optionally one set per modality (seed 001 eq. 4).

    ``forward(z)`` returns the scores z^T c_k with z and every c_k L2-normalised (the
    normalisation is part of the forward pass, so the prototypes stay on the unit sphere
    without an extra step). With ``n_modalities = M > 1`` the batch is split into M equal
    consecutive parts and part m is scored against C_m only, so C_m is trained only by
    modality m's samples.

    Args:
        dim: Feature dimension (Table I: 128).
        n_prototypes: K (Table I: 3000).
        n_modalities: M sets of prototypes.

    Shape: z (B, dim) -> scores (B, K); B a multiple of M (or pass ``modality``).

    [0] SwAV, 2020, https://arxiv.org/abs/2006.09882
    """

    def __init__(self, dim: int = 128, n_prototypes: int = 3000, n_modalities: int = 1):
        super().__init__()
        if min(dim, n_prototypes, n_modalities) < 1:
            raise ValueError("dim, n_prototypes and n_modalities must be >= 1, got "
                             f"{dim}, {n_prototypes}, {n_modalities}.")
        self.n_modalities = int(n_modalities)
        w = torch.empty(n_modalities, n_prototypes, dim)
        nn.init.normal_(w)
        self.weight = nn.Parameter(F.normalize(w, dim=2))

    @torch.no_grad()
    def normalize_(self) -> None:
        """Renormalise the stored prototypes in place (SwAV does this before every step)."""
        self.weight.copy_(F.normalize(self.weight, dim=2))

    def forward(self, z: Tensor, modality: int | None = None) -> Tensor:
        """Args:
            z: Features. Shape: (B, dim).
            modality: Score all rows against this modality's prototypes instead of splitting.
        """
        z = F.normalize(z, dim=1)
        protos = F.normalize(self.weight, dim=2)
        if modality is not None:
            return z @ protos[modality].T
        parts = split_modalities(z, self.n_modalities)
        return torch.cat([p @ protos[m].T for m, p in enumerate(parts)], dim=0)
