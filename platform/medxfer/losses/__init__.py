"""Losses the methods compose directly, one module per loss (no Ray or MLflow imports here).

As in lightly, there is no loss registry: a method builds the loss it needs from these classes
and functions (pure functions plus thin ``nn.Module`` wrappers).
"""

from __future__ import annotations

from medxfer.losses.cltci import (CLTCILoss, CLTCIMoCoLoss, PatientQueue, cltci_moco_loss,
                                  momentum_update)
from medxfer.losses.dce import (DCELoss, adaptive_loss, adaptive_target, kmeans_1d, le_curve,
                                local_conflict_fraction, local_conflict_loss,
                                region_conflict_loss, square_flatten)
from medxfer.losses.memory_bank import MemoryBank
from medxfer.losses.nt_xent import NTXentLoss, nt_xent_loss
from medxfer.losses.supcon import (SupConLoss, label_positive_mask, masked_contrastive_loss,
                                   supcon_loss)
from medxfer.losses.swav import (SwaVHybridLoss, SwaVLoss, sinkhorn, swav_codes,
                                 swav_loss_per_sample)

__all__ = [
    "CLTCILoss", "CLTCIMoCoLoss", "DCELoss", "MemoryBank", "NTXentLoss", "PatientQueue",
    "SupConLoss", "SwaVHybridLoss", "SwaVLoss", "adaptive_loss", "adaptive_target",
    "cltci_moco_loss", "kmeans_1d", "label_positive_mask", "le_curve",
    "local_conflict_fraction", "local_conflict_loss", "masked_contrastive_loss",
    "momentum_update", "nt_xent_loss", "region_conflict_loss", "sinkhorn", "square_flatten",
    "supcon_loss", "swav_codes", "swav_loss_per_sample",
]
