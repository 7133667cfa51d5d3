"""A fixed-size FIFO queue of feature vectors (MoCo's dictionary), optionally with integer ids.

Used as NT-Xent's memory bank of negatives and, with patient ids, by CL-TCI-MoCo
(``cltci.PatientQueue``). The queue starts empty: ``get`` returns only the entries written so
far, oldest first, so a half-filled queue never contrasts against random placeholders.

[0] MoCo, 2020, https://arxiv.org/abs/1911.05722
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MemoryBank(nn.Module):
    """FIFO queue of ``size`` feature vectors of dimension ``dim`` (plus one int64 id each).

    The state lives in buffers, so it moves with ``.to(device)`` and is saved in
    ``state_dict()`` (a resumed run continues with the same queue).

    Args:
        size: Number of entries kept; the oldest are overwritten first.
        dim: Feature dimension.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"MemoryBank needs size >= 1 and dim >= 1, "
                             f"got size={size}, dim={dim}.")
        self.size = int(size)
        self.dim = int(dim)
        self.register_buffer("keys", torch.zeros(self.size, self.dim))
        self.register_buffer("ids", torch.full((self.size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @torch.no_grad()
    def enqueue(self, keys: Tensor, ids: Tensor | None = None) -> None:
        """Append ``keys`` (detached) and their ids; the oldest entries are dropped when full.

        Args:
            keys: Shape (n, dim). If n > size only the last ``size`` rows are kept.
            ids: Shape (n,), integer; -1 where omitted.
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must have shape (n, {self.dim}), got {tuple(keys.shape)}.")
        if ids is None:
            ids = torch.full((keys.shape[0],), -1, dtype=torch.long, device=keys.device)
        if ids.shape != (keys.shape[0],):
            raise ValueError(f"ids must have shape ({keys.shape[0]},), got {tuple(ids.shape)}.")
        keys, ids = keys.detach()[-self.size:], ids.detach().long()[-self.size:]
        n, ptr = keys.shape[0], int(self.ptr)
        idx = (torch.arange(n, device=self.keys.device) + ptr) % self.size
        self.keys[idx] = keys.to(self.keys)
        self.ids[idx] = ids.to(self.ids.device)
        self.ptr.fill_((ptr + n) % self.size)
        self.count.fill_(min(int(self.count) + n, self.size))

    def get(self) -> tuple[Tensor, Tensor]:
        """The stored entries, oldest first.

        Returns:
            keys of shape (len, dim) and ids of shape (len,).
        """
        n = int(self.count)
        if n < self.size:
            return self.keys[:n], self.ids[:n]
        order = (torch.arange(self.size, device=self.keys.device) + int(self.ptr)) % self.size
        return self.keys[order], self.ids[order]


class IndexedMemoryBank(nn.Module):
    """One slot per dataset item, each an exponential moving average of that item's features.

    PIRL's memory bank (Misra & van der Maaten 2020, sec. 3.2): ``m_I`` is the moving average
    of the representations f(v_I) computed in earlier steps, ``m_I <- normalize(momentum m_I
    + (1 - momentum) f(v_I))``; negatives are drawn from the bank. Slots start as random unit
    vectors (a fixed seed, so a run is reproducible). State lives in buffers (saved with
    ``state_dict``).

    Args:
        size: Number of dataset items |D|.
        dim: Feature dimension.
        momentum: Weight of the old value in the moving average (PIRL: 0.5).
        seed: Seed of the initial slots.

    [0] PIRL, 2020, https://arxiv.org/abs/1912.01991
    """

    def __init__(self, size: int, dim: int, momentum: float = 0.5, seed: int = 0):
        super().__init__()
        if size < 1 or dim < 1 or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"IndexedMemoryBank needs size >= 1, dim >= 1 and momentum in "
                             f"[0, 1], got size={size}, dim={dim}, momentum={momentum}.")
        self.size, self.dim, self.momentum = int(size), int(dim), float(momentum)
        g = torch.Generator().manual_seed(seed)
        init = torch.randn(self.size, self.dim, generator=g)
        self.register_buffer("bank", init / init.norm(dim=1, keepdim=True))

    def get(self, indices: Tensor) -> Tensor:
        """The slots of ``indices`` (B,). Shape: (B, dim)."""
        return self.bank[indices.to(self.bank.device).long()]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` slots drawn uniformly with replacement (negatives). Shape: (n, dim)."""
        idx = torch.randint(0, self.size, (n,), generator=generator)
        return self.bank[idx.to(self.bank.device)]

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor) -> None:
        """Moving-average update of the slots of ``indices`` (B,) with ``features`` (B, dim)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must have shape (n, {self.dim}), got "
                             f"{tuple(features.shape)}.")
        idx = indices.to(self.bank.device).long()
        f = features.detach().to(self.bank)
        f = f / f.norm(dim=1, keepdim=True).clamp(min=1e-12)
        new = self.momentum * self.bank[idx] + (1.0 - self.momentum) * f
        self.bank[idx] = new / new.norm(dim=1, keepdim=True).clamp(min=1e-12)
