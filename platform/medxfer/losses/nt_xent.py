"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR.

Seed 000 (``000_3dd3de5c534b555f.txt``) sec. 3.2, eq. 9:

    l_ij = -log( exp(sim(z_i, z_j)/tau) / sum_{k=1}^{2N} 1[k != i] exp(sim(z_i, z_k)/tau) )

with sim the cosine similarity; the loss is the mean of l_ij over all 2N anchors (both
directions of every positive pair).

[0] SimCLR, 2020, https://arxiv.org/abs/2002.05709
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.losses.memory_bank import MemoryBank


def nt_xent_loss(z0: Tensor, z1: Tensor, temperature: float = 0.5,
                 negatives: Tensor | None = None) -> Tensor:
    """NT-Xent between two views (pure function).

    Without ``negatives``: eq. 9 over the 2N embeddings of the batch (in-batch negatives).
    With ``negatives`` (a memory bank, MoCo style): each ``z0[i]`` is contrasted with its
    positive ``z1[i]`` and the bank only, ``-log softmax([s(z0_i, z1_i), s(z0_i, bank)])[0]``.

    Args:
        z0: First view. Shape: (N, D).
        z1: Second view, row i is the positive of ``z0[i]``. Shape: (N, D).
        temperature: tau > 0.
        negatives: Optional bank of negatives. Shape: (M, D).

    Returns:
        Scalar loss (mean over anchors).
    """
    if z0.shape != z1.shape or z0.ndim != 2:
        raise ValueError(f"z0 and z1 must both have shape (N, D), got {tuple(z0.shape)} and "
                         f"{tuple(z1.shape)}.")
    z0, z1 = F.normalize(z0, dim=1), F.normalize(z1, dim=1)
    if negatives is not None:
        neg = F.normalize(negatives.to(z0), dim=1)
        pos = (z0 * z1).sum(dim=1, keepdim=True)
        logits = torch.cat([pos, z0 @ neg.T], dim=1) / temperature
        target = torch.zeros(z0.shape[0], dtype=torch.long, device=z0.device)
        return F.cross_entropy(logits, target)
    n = z0.shape[0]
    z = torch.cat([z0, z1], dim=0)
    logits = z @ z.T / temperature
    # 1[k != i]: the anchor itself is removed from the denominator.
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


class NTXentLoss(nn.Module):
    """NT-Xent loss (seed 000 eq. 9), optionally with a FIFO memory bank of negatives.

    Args:
        temperature: tau > 0 (SimCLR uses 0.5 for large batches, 0.1 is common for small).
        memory_bank_size: 0 for in-batch negatives (SimCLR); > 0 keeps the last
            ``memory_bank_size`` second-view embeddings as negatives (MoCo). Needs ``dim``.
        dim: Embedding dimension, required with a memory bank.

    With a memory bank, ``forward`` contrasts against the bank *before* adding the current
    ``z1`` to it, so a sample is never its own negative.
    """

    def __init__(self, temperature: float = 0.5, memory_bank_size: int = 0,
                 dim: int | None = None):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if memory_bank_size < 0:
            raise ValueError(f"memory_bank_size must be >= 0, got {memory_bank_size}.")
        if memory_bank_size > 0 and not dim:
            raise ValueError("memory_bank_size > 0 needs dim (the embedding dimension); "
                             "pass NTXentLoss(memory_bank_size=..., dim=D).")
        self.temperature = float(temperature)
        self.memory_bank = MemoryBank(memory_bank_size, dim) if memory_bank_size else None

    def forward(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Args: z0, z1: the two views' embeddings, shape (N, D). Returns the scalar loss."""
        if self.memory_bank is None:
            return nt_xent_loss(z0, z1, self.temperature)
        bank, _ = self.memory_bank.get()
        loss = nt_xent_loss(z0, z1, self.temperature, negatives=bank)
        self.memory_bank.enqueue(F.normalize(z1.detach(), dim=1))
        return loss
