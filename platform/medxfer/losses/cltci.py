"""CL-TCI: contrastive learning with temporally correlated images (patient positives).

Seed 003 (``003_4aa9fa56a835f729.txt``) sec. III-A, eq. 1-2:

    L = sum_{i=1}^{2N} L_i,
    L_i = -1/|Omega_i^+| sum_{j in Omega_i^+}
          log( e^{sim(z_i,z_j)/tau} / sum_{k=1}^{2N} 1[i != k] e^{sim(z_i,z_k)/tau} )

Omega_i^+: the other view of the same image *and* every view of other images of the same
patient. sim is the cosine similarity. We average over anchors instead of summing (a
constant scale).

* CL-TCI-SimCLR (:class:`CLTCILoss`): in-batch, i.e. SupCon with patient ids as labels.
* CL-TCI-MoCo (:class:`CLTCIMoCoLoss`): each query contrasts with its own key (from the
  momentum encoder) plus a FIFO queue of keys, each stored with its patient id
  (:class:`PatientQueue`); queue entries of the query's patient are positives too.
  The momentum encoder follows the online one through :func:`momentum_update`.

[0] SupCon, 2020, https://arxiv.org/abs/2004.11362  [1] MoCo, 2020, https://arxiv.org/abs/1911.05722
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.losses.memory_bank import MemoryBank
from medxfer.losses.supcon import masked_contrastive_loss, supcon_loss


class PatientQueue(MemoryBank):
    """FIFO queue of momentum-encoder keys with the patient id of each key (seed 003 III-A.2).

    Args:
        size: Number of keys kept (MoCo's dictionary size).
        dim: Key dimension.
    """

    def enqueue(self, keys: Tensor, ids: Tensor | None = None) -> None:  # noqa: D102
        if ids is None:
            raise ValueError("PatientQueue.enqueue needs the patient ids of the keys.")
        super().enqueue(keys, ids)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float = 0.999) -> None:
    """MoCo's momentum update of the key encoder: ``target = m * target + (1 - m) * online``.

    Only parameters are averaged; buffers (BatchNorm statistics) are the target's own, as in
    MoCo. The two modules must have the same parameter layout.

    Args:
        online: Encoder trained by gradient descent.
        target: Momentum (key) encoder, updated in place.
        m: Momentum in [0, 1]; 1 freezes the target, 0 copies the online encoder.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m}.")
    for p_o, p_t in zip(online.parameters(), target.parameters(), strict=True):
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)


def cltci_moco_loss(q: Tensor, k: Tensor, patient_ids: Tensor, queue_keys: Tensor,
                    queue_ids: Tensor, temperature: float = 0.1) -> Tensor:
    """CL-TCI-MoCo loss (pure function).

    For query i the candidates are its own key ``k[i]`` (positive) and every queue key;
    queue keys with ``queue_ids == patient_ids[i]`` are positives as well (eq. 2 with the
    dictionary in place of the batch). Other in-batch keys are not candidates (as in MoCo).

    Args:
        q: Queries from the online encoder. Shape: (N, D).
        k: Keys of the other view from the momentum encoder (no gradient). Shape: (N, D).
        patient_ids: Shape (N,).
        queue_keys: Shape (K, D), K may be 0.
        queue_ids: Shape (K,).
        temperature: tau > 0.

    Returns:
        Scalar loss, mean over queries.
    """
    q = F.normalize(q, dim=1)
    cand = F.normalize(torch.cat([k.detach(), queue_keys.to(k)], dim=0), dim=1)
    n = q.shape[0]
    own = torch.eye(n, dtype=torch.bool, device=q.device)
    in_queue = torch.ones(n, queue_keys.shape[0], dtype=torch.bool, device=q.device)
    valid = torch.cat([own, in_queue], dim=1)
    same = patient_ids.to(q.device)[:, None] == queue_ids.to(q.device)[None, :]
    positive = torch.cat([own, same], dim=1)
    per_anchor, _ = masked_contrastive_loss(q @ cand.T / temperature, positive, valid)
    return per_anchor.mean()


class CLTCILoss(nn.Module):
    """CL-TCI-SimCLR loss (seed 003 eq. 1-2): in-batch, positives = same patient.

    Args:
        temperature: tau > 0 (seed 003 uses 0.1).
    """

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)

    def forward(self, features: Tensor, patient_ids: Tensor) -> Tensor:
        """Args:
            features: Shape (B, V, D), V views of B images.
            patient_ids: Shape (B,).
        """
        return supcon_loss(features, patient_ids, self.temperature)


class CLTCIMoCoLoss(nn.Module):
    """CL-TCI-MoCo loss with its :class:`PatientQueue` (seed 003 III-A.2).

    ``forward(q, k, patient_ids)`` contrasts against the queue as it was *before* this
    batch, then enqueues ``k`` with the patient ids (first in, first out).

    Args:
        temperature: tau > 0.
        queue_size: Number of keys in the dictionary.
        dim: Key dimension.
    """

    def __init__(self, temperature: float = 0.1, queue_size: int = 4096, dim: int = 128):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self.queue = PatientQueue(queue_size, dim)

    def forward(self, q: Tensor, k: Tensor, patient_ids: Tensor) -> Tensor:
        """Args: q, k: shape (N, D); patient_ids: shape (N,). Returns the scalar loss."""
        keys, ids = self.queue.get()
        loss = cltci_moco_loss(q, k, patient_ids, keys, ids, self.temperature)
        self.queue.enqueue(F.normalize(k.detach(), dim=1), patient_ids)
        return loss
