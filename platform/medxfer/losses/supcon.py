"""Supervised contrastive loss L_out^sup, single- and multi-label.

Seed 002 (``002_d7fb762c9e967338.txt``):

    L_out^sup = sum_{i in I} -1/|P(i)| sum_{p in P(i)}
                log( exp(z_i.z_p/tau) / sum_{a in A(i)} exp(z_i.z_a/tau) )

I: every view of every sample (the anchors); A(i) = I without i; P(i) = the members of A(i)
with a positive relation to i: same class for class indices; for multi-hot labels, *sharing
at least one label* (seed 002: "Two images are considered a positive pair if they share at
least one disease label"). The other views of the same image are always positives, so a
sample whose label row is all zero is positive only with its own views. Anchors without any
positive (one view and a unique label) are left out of the mean. The loss is averaged over
anchors (the seed writes a sum; the mean keeps the scale independent of the batch size) and
multiplied by tau / base_temperature as in the reference implementation.

[0] SupCon, 2020, https://arxiv.org/abs/2004.11362
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def masked_contrastive_loss(logits: Tensor, positive_mask: Tensor,
                            valid_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-anchor multi-positive InfoNCE, the shared core of SupCon and CL-TCI.

    loss_i = -1/|P(i)| sum_{p in P(i)} log( exp(l_ip) / sum_{a valid for i} exp(l_ia) )

    Args:
        logits: Similarities / temperature. Shape: (n_anchors, n_candidates).
        positive_mask: Bool, True where candidate p is a positive of anchor i. Shape as logits.
        valid_mask: Bool, the candidates A(i) in the denominator (default: all). Shape as
            logits. Positives must be valid.

    Returns:
        Per-anchor loss, shape (n_anchors,), and a bool mask of the anchors that have at
        least one positive (the loss of the others is 0 and must be left out of a mean).
    """
    if valid_mask is None:
        valid_mask = torch.ones_like(positive_mask)
    positive_mask = positive_mask & valid_mask
    logits = logits.masked_fill(~valid_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(~positive_mask, 0.0)
    n_pos = positive_mask.sum(dim=1)
    # clamp: dividing by 0 would put NaN into the backward pass even for unused anchors
    return -log_prob.sum(dim=1) / n_pos.clamp(min=1), n_pos > 0


def label_positive_mask(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """Positive relation between two label sets.

    Args:
        labels_a: Class indices, shape (n,), or multi-hot, shape (n, C).
        labels_b: Same kind, shape (m,) or (m, C).

    Returns:
        Bool mask (n, m): equal class, or at least one shared label for multi-hot.
    """
    if labels_a.ndim == 1:
        return labels_a[:, None] == labels_b[None, :]
    return (labels_a.float() @ labels_b.float().T) > 0


def supcon_loss(features: Tensor, labels: Tensor | None = None, temperature: float = 0.1,
                base_temperature: float | None = None) -> Tensor:
    """Supervised contrastive loss (pure function).

    Args:
        features: Embeddings, normalised here. Shape: (B, V, D) for V views of B samples,
            or (B, D) for one view.
        labels: Class indices (B,) or multi-hot (B, C); None gives SimCLR's unsupervised
            case (only the views of the same sample are positives).
        temperature: tau > 0.
        base_temperature: Loss scaled by tau / base_temperature (default: tau, i.e. 1).

    Returns:
        Scalar loss, mean over anchors that have at least one positive.
    """
    if features.ndim == 2:
        features = features[:, None, :]
    if features.ndim != 3:
        raise ValueError(f"features must have shape (B, V, D) or (B, D), "
                         f"got {tuple(features.shape)}.")
    b, v, _ = features.shape
    if labels is not None and labels.shape[0] != b:
        raise ValueError(f"labels has {labels.shape[0]} rows but features has {b} samples.")
    base_temperature = temperature if base_temperature is None else base_temperature
    # View-major order: row k*B + i is view k of sample i.
    z = F.normalize(features.transpose(0, 1).reshape(v * b, -1), dim=1)
    sample = torch.arange(b, device=z.device).repeat(v)
    pos = sample[:, None] == sample[None, :]
    if labels is not None:
        lab = (labels.to(z.device).repeat(v) if labels.ndim == 1
               else labels.to(z.device).repeat(v, 1))
        pos = pos | label_positive_mask(lab, lab)
    not_self = ~torch.eye(v * b, dtype=torch.bool, device=z.device)
    per_anchor, has_pos = masked_contrastive_loss(z @ z.T / temperature, pos & not_self, not_self)
    if not bool(has_pos.any()):
        raise ValueError("No anchor has a positive: "
                         "use >= 2 views or labels shared by >= 2 samples.")
    return per_anchor[has_pos].mean() * (temperature / base_temperature)


class SupConLoss(nn.Module):
    """Supervised contrastive loss L_out^sup (seed 002), see :func:`supcon_loss`.

    Args:
        temperature: tau > 0.
        base_temperature: Scale tau / base_temperature (default tau).
    """

    def __init__(self, temperature: float = 0.1, base_temperature: float | None = None):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if base_temperature is not None and base_temperature <= 0:
            raise ValueError(f"base_temperature must be > 0, got {base_temperature}.")
        self.temperature = float(temperature)
        self.base_temperature = base_temperature

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        """Args: features (B, V, D) or (B, D); labels (B,) or (B, C). Returns the scalar loss."""
        return supcon_loss(features, labels, self.temperature, self.base_temperature)
