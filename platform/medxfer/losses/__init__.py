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
from medxfer.losses.dice_ce import DiceCELoss, dice_ce_loss, soft_dice_per_class
from medxfer.losses.mae import (MAELoss, mae_loss, mask_from_indices, patchify, random_token_mask,
                                unpatchify)
from medxfer.losses.memory_bank import IndexedMemoryBank, MemoryBank
from medxfer.losses.moco import MoCoLoss, moco_loss
from medxfer.losses.nt_xent import NTXentLoss, nt_xent_loss
from medxfer.losses.pirl import PIRLLoss, nce_loss, pirl_loss
from medxfer.losses.rotation import RotationLoss, rotation_batch, rotation_loss
from medxfer.losses.supcon import (SupConLoss, label_positive_mask, masked_contrastive_loss,
                                   supcon_loss)
from medxfer.losses.swav import (SwaVHybridLoss, SwaVLoss, sinkhorn, swav_codes,
                                 swav_loss_per_sample)

__all__ = [
    "CLTCILoss", "CLTCIMoCoLoss", "DCELoss", "DiceCELoss", "IndexedMemoryBank", "MAELoss",
    "MemoryBank", "MoCoLoss", "NTXentLoss", "PIRLLoss", "PatientQueue", "RotationLoss",
    "SupConLoss", "SwaVHybridLoss", "SwaVLoss", "adaptive_loss", "adaptive_target",
    "cltci_moco_loss", "dice_ce_loss", "kmeans_1d", "label_positive_mask", "le_curve",
    "local_conflict_fraction", "local_conflict_loss", "mae_loss", "mask_from_indices",
    "masked_contrastive_loss", "moco_loss", "momentum_update", "nce_loss", "nt_xent_loss",
    "patchify", "pirl_loss", "random_token_mask", "region_conflict_loss", "rotation_batch",
    "rotation_loss", "sinkhorn", "soft_dice_per_class", "square_flatten", "supcon_loss",
    "swav_codes", "swav_loss_per_sample", "unpatchify",
]
