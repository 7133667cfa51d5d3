"""Plain MoCo v2: InfoNCE against a FIFO queue of momentum-encoder keys.

He et al. 2020 eq. 1 (MoCo), with the v2 changes of Chen et al. 2020 (MLP head, blur
augmentation, tau = 0.2, cosine schedule):

    L_q = -log( exp(q . k+ / tau) / sum_{i=0}^{K} exp(q . k_i / tau) )

q the L2-normalised query of one view (online encoder), k+ the key of the other view
(momentum encoder, no gradient) and k_1..k_K the queue. The key encoder follows the online one
by theta_k <- m theta_k + (1 - m) theta_q with m = 0.999 (eq. 2).

This is CL-TCI-MoCo without patient positives (seed 003, ``003_4aa9fa56a835f729.txt``
sec. III-A.2 and Table I's "MoCo" row), so the parts are shared, not copied: the queue is
:class:`~medxfer.losses.memory_bank.MemoryBank`, the InfoNCE with a bank of negatives is
:func:`~medxfer.losses.nt_xent.nt_xent_loss` and the key-encoder update is
:func:`~medxfer.losses.cltci.momentum_update`.

[0] MoCo, 2020, https://arxiv.org/abs/1911.05722  [1] MoCo v2, 2020, https://arxiv.org/abs/2003.04297
"""

from __future__ import annotations

from torch import Tensor

from medxfer.losses.cltci import momentum_update
from medxfer.losses.nt_xent import NTXentLoss, nt_xent_loss

#: Key-encoder momentum m of MoCo (eq. 2); seed 003: "the momentum update follows the
#: original MoCo".
MOMENTUM = 0.999
#: MoCo v2's temperature (MoCo v1: 0.07); seed 003 sec. IV uses 0.1 for its own runs.
TEMPERATURE = 0.2
#: MoCo's dictionary size K.
QUEUE_SIZE = 65536


def moco_loss(q: Tensor, k: Tensor, queue: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """MoCo's InfoNCE (eq. 1), pure function.

    Args:
        q: Queries from the online encoder. Shape: (N, D).
        k: Keys of the other view from the momentum encoder (treated as constants). Shape: (N, D).
        queue: Negative keys. Shape: (K, D), K may be 0.
        temperature: tau > 0.

    Returns:
        Scalar loss, mean over queries. Other in-batch keys are not candidates (as in MoCo).
    """
    return nt_xent_loss(q, k.detach(), temperature, negatives=queue)


class MoCoLoss(NTXentLoss):
    """MoCo v2 loss with its FIFO queue (contrast with the queue, then enqueue the keys).

    Args:
        temperature: tau (MoCo v2: 0.2).
        queue_size: K keys kept.
        dim: Key dimension (MoCo: 128).
    """

    def __init__(self, temperature: float = TEMPERATURE, queue_size: int = QUEUE_SIZE,
                 dim: int = 128):
        super().__init__(temperature, memory_bank_size=queue_size, dim=dim)

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """Args: q, k: shape (N, D); ``k`` from the momentum encoder. Returns the scalar loss."""
        return super().forward(q, k.detach())


__all__ = ["MOMENTUM", "QUEUE_SIZE", "TEMPERATURE", "MoCoLoss", "moco_loss", "momentum_update"]
