"""PIRL: pretext-invariant representation learning with a memory bank (jigsaw pretext).

Misra & van der Maaten 2020, sec. 3.1-3.2. f(v_I) is the (projected, L2-normalised)
representation of image I, g(v_{I^t}) that of its jigsaw-transformed version I^t, m_I the
memory-bank entry of I (a moving average of f(v_I)), D_N a set of N negatives from the bank
and s the cosine similarity:

    eq. 3  h(u, v) = exp(s(u, v) / tau) / (exp(s(u, v) / tau) + N / |D|)
    eq. 4  L_NCE(u, v) = -log h(u, v) - sum_{I' in D_N} log(1 - h(v, m_{I'}))
    eq. 5  L(I, I^t) = lambda L_NCE(m_I, g(v_{I^t})) + (1 - lambda) L_NCE(m_I, f(v_I))

Defaults from the paper: tau = 0.07, lambda = 0.5, N = 32000 negatives, bank momentum 0.5.
Baseline "PIRL" of seed 003 (``003_4aa9fa56a835f729.txt`` Table I, ref. [8]).

[0] PIRL, 2020, https://arxiv.org/abs/1912.01991
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.losses.memory_bank import IndexedMemoryBank

TEMPERATURE = 0.07
LAMBDA = 0.5
N_NEGATIVES = 32000
BANK_MOMENTUM = 0.5


def nce_loss(u: Tensor, v: Tensor, negatives: Tensor, n_data: int,
             temperature: float = TEMPERATURE) -> Tensor:
    """L_NCE(u, v) of eq. 4 with h of eq. 3, mean over the batch (pure function).

    Args:
        u: The positive's memory entry m_I. Shape: (B, D).
        v: The representation scored against it and against the negatives. Shape: (B, D).
        negatives: Bank entries m_{I'}: shared (N, D) or per sample (B, N, D).
        n_data: |D|, the dataset size (noise prior N / |D|).
        temperature: tau > 0.

    Returns:
        Scalar loss.
    """
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"u and v must both be (B, D), got {tuple(u.shape)}, {tuple(v.shape)}.")
    if n_data < 1:
        raise ValueError(f"n_data (the dataset size |D|) must be >= 1, got {n_data}.")
    u, v = F.normalize(u, dim=1), F.normalize(v, dim=1)
    neg = F.normalize(negatives.to(v), dim=-1)
    n = neg.shape[-2]
    log_prior = math.log(n / n_data) if n else -math.inf
    pos = (u * v).sum(dim=1) / temperature  # (B,)
    sims = (v @ neg.T if neg.ndim == 2 else torch.einsum("bd,bnd->bn", v, neg)) / temperature
    # log h = s - log(e^s + N/|D|); log(1 - h) = log(N/|D|) - log(e^s + N/|D|)
    log_h_pos = pos - torch.logaddexp(pos, torch.full_like(pos, log_prior))
    if n == 0:
        return -log_h_pos.mean()
    log_1m_h = log_prior - torch.logaddexp(sims, torch.full_like(sims, log_prior))
    return (-log_h_pos - log_1m_h.sum(dim=1)).mean()


def pirl_loss(f_image: Tensor, g_jigsaw: Tensor, memory: Tensor, negatives: Tensor,
              n_data: int, temperature: float = TEMPERATURE, lam: float = LAMBDA) -> Tensor:
    """Eq. 5: lambda L_NCE(m_I, g(v_It)) + (1 - lambda) L_NCE(m_I, f(v_I)).

    Args:
        f_image: f(v_I) of the untransformed images. Shape: (B, D).
        g_jigsaw: g(v_It) of their jigsaw versions. Shape: (B, D).
        memory: m_I, the bank entries of the same images. Shape: (B, D).
        negatives: m_{I'} from the bank, (N, D) or (B, N, D).
        n_data: |D|.
        temperature: tau.
        lam: lambda in [0, 1] (paper: 0.5).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}.")
    return (lam * nce_loss(memory, g_jigsaw, negatives, n_data, temperature)
            + (1.0 - lam) * nce_loss(memory, f_image, negatives, n_data, temperature))


class PIRLLoss(nn.Module):
    """PIRL loss with its memory bank (eq. 3-5): score, then update the bank with f(v_I).

    Args:
        n_data: |D|, one bank slot per training image (items carry their index).
        dim: Representation dimension (PIRL: 128).
        temperature: tau (0.07).
        lam: lambda (0.5).
        n_negatives: N negatives drawn uniformly from the bank per step (shared by the batch).
        bank_momentum: Moving-average weight of the old bank entry (0.5).
        seed: Seed of the bank's initial entries.
    """

    def __init__(self, n_data: int, dim: int = 128, temperature: float = TEMPERATURE,
                 lam: float = LAMBDA, n_negatives: int = N_NEGATIVES,
                 bank_momentum: float = BANK_MOMENTUM, seed: int = 0):
        super().__init__()
        if temperature <= 0 or n_negatives < 0 or not 0.0 <= lam <= 1.0:
            raise ValueError("need temperature > 0, n_negatives >= 0 and lam in [0, 1], got "
                             f"{temperature}, {n_negatives}, {lam}.")
        self.n_data, self.temperature, self.lam = int(n_data), float(temperature), float(lam)
        self.n_negatives = int(n_negatives)
        self.bank = IndexedMemoryBank(n_data, dim, bank_momentum, seed)

    def forward(self, f_image: Tensor, g_jigsaw: Tensor, indices: Tensor,
                generator: torch.Generator | None = None, update: bool = True) -> Tensor:
        """Args:
            f_image: (B, D); g_jigsaw: (B, D); indices: (B,) dataset indices of the images.
            generator: Draws the negatives. update: write f(v_I) into the bank afterwards
            (False for validation).
        """
        memory = self.bank.get(indices)
        negatives = self.bank.sample(self.n_negatives, generator)
        loss = pirl_loss(f_image, g_jigsaw, memory, negatives, self.n_data, self.temperature,
                         self.lam)
        if update:
            self.bank.update(indices, f_image)
        return loss
