"""The modality-major batch layout shared by the model and loss layers.

Seed ``001_a9715376ac5cbd5d.txt`` sec. III-A.2 (eq. 4): a batch of M modalities holds B/M
samples of each, laid out as M equal consecutive parts; part m is scored against modality m's
prototypes (``models.heads.SwaVPrototypes``) and gets its own Sinkhorn codes
(``losses.swav``). Models and losses are sibling layers that must not import each other, so
the layout they share lives here, below both (pure torch, no medxfer imports).
"""

from __future__ import annotations

import torch
from torch import Tensor


def split_modalities(x: Tensor, n_modalities: int) -> tuple[Tensor, ...]:
    """Split a batch into ``n_modalities`` equal consecutive parts.

    Args:
        x: Shape (B, ...), B a multiple of ``n_modalities``; part m holds modality m.

    Returns:
        ``n_modalities`` views of shape (B / n_modalities, ...).

    Raises:
        ValueError: B is not a multiple of ``n_modalities`` (or ``n_modalities < 1``).
    """
    if n_modalities < 1 or x.shape[0] % n_modalities:
        raise ValueError(f"batch size {x.shape[0]} must be a multiple of n_modalities "
                         f"({n_modalities}): build batches of B/M samples per modality.")
    return torch.chunk(x, n_modalities, dim=0)
