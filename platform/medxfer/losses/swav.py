"""SwAV-style online clustering: Sinkhorn codes, swapped prediction, per-modality
prototypes and the hybrid self-supervised / supervised objective.

Seed 001 (``001_a9715376ac5cbd5d.txt``) sec. III:

* eq. 1 swapped prediction: L_ss = -sum_k q2_k log p1_k - sum_k q1_k log p2_k,
  p_v = softmax(z_v^T C / tau), z and the prototypes c_k L2-normalised;
* eq. 3 codes Q = argmax Tr(Q^T C^T Z) + eps H(Q) under the equipartition constraint,
  solved by a few Sinkhorn-Knopp iterations without gradient (:func:`sinkhorn`);
* eq. 4 multi-modality: the batch is split into M equal parts, one per modality, each with
  its own prototypes C_m and its own codes (equipartition within the modality);
* eq. 5-7 hybrid: (1/N) sum_k alpha L_ss(x_k) + 1[k labelled] beta L_sup(g(x_k), y_k).

Defaults from Table I (2D): tau = 0.1, eps = 0.03, 3 Sinkhorn iterations, 128-d features,
3000 prototypes. (The table's row names are lost in the seed's text; the values are read in
the order of SwAV's own hyperparameter list.)

[0] SwAV, 2020, https://arxiv.org/abs/2006.09882
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medxfer.batch_layout import split_modalities


@torch.no_grad()
def sinkhorn(scores: Tensor, epsilon: float = 0.03, n_iters: int = 3,
             gather_distributed: bool = False) -> Tensor:
    """Soft codes by Sinkhorn-Knopp (seed 001 eq. 3), no gradient.

    Solves max_Q Tr(Q^T C^T Z) + eps H(Q) over the transport polytope whose marginals are
    uniform: each of the K prototypes receives B/K samples' worth of mass and each sample
    distributes one unit. Iterations alternate prototype (row) and sample (column)
    normalisation of Q = exp(scores^T / eps), ending on the sample side, so every returned
    row is exactly a distribution and the prototype marginals converge to B/K.

    Args:
        scores: Similarities z^T c. Shape: (B, K).
        epsilon: Entropy weight eps > 0 (smaller = harder codes).
        n_iters: Number of Sinkhorn iterations (seed: 3).
        gather_distributed: Under torch.distributed (DDP workers), enforce the equipartition
            over the global batch of all workers (sums are all-reduced), as SwAV does.

    Returns:
        Codes q. Shape: (B, K); rows sum to 1, columns to B/K (approximately, closer with
        more iterations).
    """
    if epsilon <= 0 or n_iters < 1:
        raise ValueError(f"sinkhorn needs epsilon > 0 and n_iters >= 1, got {epsilon}, {n_iters}.")
    dist = torch.distributed
    world = dist.get_world_size() if (gather_distributed and dist.is_available()
                                      and dist.is_initialized()) else 1

    def all_reduce(t: Tensor, op=None) -> Tensor:
        if world > 1:
            dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t

    # Work in float64 with the (global) max subtracted: exp(score / 0.03) overflows otherwise.
    s = scores.double()
    shift = all_reduce(s.max().clone(), dist.ReduceOp.MAX if world > 1 else None)
    q = (s - shift).div(epsilon).exp().T  # (K, B)
    q /= all_reduce(q.sum())
    k, b = q.shape[0], q.shape[1] * world
    for _ in range(n_iters):
        q /= all_reduce(q.sum(dim=1, keepdim=True)) * k  # each prototype gets mass 1/K
        q /= q.sum(dim=0, keepdim=True) * b  # each sample gets mass 1/B
    return (q * b).T.to(scores.dtype)


def swav_codes(scores: Tensor, epsilon: float, n_iters: int, n_modalities: int = 1,
               gather_distributed: bool = False) -> Tensor:
    """Sinkhorn codes computed separately inside each modality's part (eq. 4). Shape (B, K)."""
    parts = split_modalities(scores.detach(), n_modalities)
    return torch.cat([sinkhorn(p, epsilon, n_iters, gather_distributed) for p in parts], dim=0)


def swav_loss_per_sample(scores: list[Tensor], temperature: float = 0.1,
                         epsilon: float = 0.03, n_iters: int = 3, n_modalities: int = 1,
                         n_assign: int = 2, gather_distributed: bool = False) -> Tensor:
    """Swapped-prediction loss per sample (seed 001 eq. 1, SwAV's multi-crop form).

    Codes are computed for the first ``n_assign`` views; every other view predicts them:
    L = sum_{a < n_assign} 1/(V-1) sum_{v != a} CE(q_a, softmax(s_v / tau)). With two views
    this is exactly eq. 1: -q2 log p1 - q1 log p2.

    Args:
        scores: One tensor per view, z_v^T C with z and C L2-normalised. Shape: (B, K) each;
            for M modalities, rows of part m must be scored against C_m (see
            ``models.heads.SwaVPrototypes``).
        temperature: tau.
        epsilon: Sinkhorn entropy weight.
        n_iters: Sinkhorn iterations.
        n_modalities: M; codes are computed per modality part.
        n_assign: Number of views that get codes (the high-resolution crops).
        gather_distributed: Sinkhorn over the global batch of all DDP workers.

    Returns:
        Per-sample loss. Shape: (B,).
    """
    v = len(scores)
    if v < 2 or not 1 <= n_assign <= v:
        raise ValueError(f"need >= 2 views and 1 <= n_assign <= views, got {v} views, "
                         f"n_assign={n_assign}.")
    log_p = [F.log_softmax(s / temperature, dim=1) for s in scores]
    total = scores[0].new_zeros(scores[0].shape[0])
    for a in range(n_assign):
        q = swav_codes(scores[a], epsilon, n_iters, n_modalities, gather_distributed)
        for j in range(v):
            if j != a:
                total = total - (q * log_p[j]).sum(dim=1) / (v - 1)
    return total


class SwaVLoss(nn.Module):
    """Swapped-prediction loss with Sinkhorn codes (seed 001 eq. 1, 3, 4).

    Args:
        temperature: tau (Table I: 0.1).
        epsilon: Sinkhorn entropy weight (Table I: 0.03).
        sinkhorn_iterations: Table I: 3.
        n_modalities: M equal batch parts with their own prototypes and codes (eq. 4).
        n_assign: Views that get codes (2 for the two high-resolution crops).
        gather_distributed: Sinkhorn equipartition over all DDP workers' samples.
    """

    def __init__(self, temperature: float = 0.1, epsilon: float = 0.03,
                 sinkhorn_iterations: int = 3, n_modalities: int = 1, n_assign: int = 2,
                 gather_distributed: bool = False):
        super().__init__()
        if temperature <= 0 or epsilon <= 0:
            raise ValueError(f"temperature and epsilon must be > 0, got {temperature}, {epsilon}.")
        if sinkhorn_iterations < 1 or n_modalities < 1:
            raise ValueError("sinkhorn_iterations and n_modalities must be >= 1, got "
                             f"{sinkhorn_iterations}, {n_modalities}.")
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.n_modalities = int(n_modalities)
        self.n_assign = int(n_assign)
        self.gather_distributed = bool(gather_distributed)

    def per_sample(self, scores: list[Tensor]) -> Tensor:
        """Per-sample L_ss, shape (B,); see :func:`swav_loss_per_sample`."""
        return swav_loss_per_sample(list(scores), self.temperature, self.epsilon,
                                    self.sinkhorn_iterations, self.n_modalities, self.n_assign,
                                    self.gather_distributed)

    def forward(self, scores: list[Tensor]) -> Tensor:
        """Args: scores: per view, prototype scores of shape (B, K). Returns the mean loss."""
        return self.per_sample(scores).mean()


class SwaVHybridLoss(nn.Module):
    """Hybrid objective of seed 001 eq. 7: mean_k [alpha L_ss(x_k) + 1[labelled k] beta L_sup].

    Both terms are divided by the full batch size N, as in eq. 7 (so the supervised term
    weighs more when more of the batch is labelled).

    Args:
        alpha: Weight of the self-supervised term.
        beta: Weight of the supervised term.
        multilabel: L_sup is BCE-with-logits summed over labels (multi-hot targets) instead
            of cross-entropy over class indices.
        **swav_kwargs: Passed to :class:`SwaVLoss`.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, multilabel: bool = False,
                 **swav_kwargs):
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.multilabel = bool(multilabel)
        self.swav = SwaVLoss(**swav_kwargs)

    def supervised_per_sample(self, logits: Tensor, labels: Tensor) -> Tensor:
        """L_sup per sample (eq. 6). logits (B, C); labels (B,) indices or (B, C) multi-hot."""
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, labels.float(),
                                                      reduction="none").sum(dim=1)
        return F.cross_entropy(logits, labels.long(), reduction="none")

    def forward(self, scores: list[Tensor], logits: Tensor | None = None,
                labels: Tensor | None = None, labelled: Tensor | None = None) -> Tensor:
        """Args:
            scores: Per view, prototype scores (B, K).
            logits: Output of the supervised projector g (eq. 5). Shape: (B, C).
            labels: (B,) or (B, C); rows outside ``labelled`` are ignored (any value).
            labelled: Bool (B,), the samples with labels (default: all when labels given).
        """
        total = self.alpha * self.swav.per_sample(scores) if self.alpha else 0.0
        if self.beta and logits is not None and labels is not None:
            if labelled is None:
                labelled = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
            sup = torch.zeros(logits.shape[0], device=logits.device, dtype=logits.dtype)
            if bool(labelled.any()):
                sup = sup.index_put((labelled.nonzero(as_tuple=True)[0],),
                                    self.supervised_per_sample(logits[labelled], labels[labelled]))
            total = total + self.beta * sup
        if isinstance(total, float):
            raise ValueError("Nothing to optimise: alpha is 0 and no labelled logits were given.")
        return total.mean()
