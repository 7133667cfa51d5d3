"""Losses the methods compose, one module per loss (no Ray or MLflow imports here).

``get_loss(name)`` returns the class registered under ``name``; ``list_losses()`` the names.
Adding a loss: one new module, one line in ``_REGISTRY`` and its tests.
"""

from __future__ import annotations

from torch import nn

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
from medxfer.losses.supcon import SupConLoss, label_positive_mask, masked_contrastive_loss, supcon_loss
from medxfer.losses.swav import (SwaVHybridLoss, SwaVLoss, sinkhorn, split_modalities,
                                 swav_codes, swav_loss_per_sample)

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_loss(name: str, cls: type[nn.Module]) -> None:
    """Register ``cls`` under ``name``; a duplicate name raises ValueError."""
    if name in _REGISTRY:
        raise ValueError(f"loss {name!r} is already registered ({_REGISTRY[name].__name__}).")
    _REGISTRY[name] = cls


def get_loss(name: str) -> type[nn.Module]:
    """The loss class registered under ``name`` (instantiate it with its hyperparameters)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(_REGISTRY))}.") from None


def list_losses() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(_REGISTRY)


for _name, _cls in [("nt_xent", NTXentLoss), ("supcon", SupConLoss), ("cltci", CLTCILoss),
                    ("cltci_moco", CLTCIMoCoLoss), ("swav", SwaVLoss),
                    ("swav_hybrid", SwaVHybridLoss), ("dce", DCELoss), ("mae", MAELoss),
                    ("rotation", RotationLoss), ("pirl", PIRLLoss), ("moco", MoCoLoss),
                    ("dice_ce", DiceCELoss)]:
    register_loss(_name, _cls)

__all__ = [
    "CLTCILoss", "CLTCIMoCoLoss", "DCELoss", "DiceCELoss", "IndexedMemoryBank", "MAELoss",
    "MemoryBank", "MoCoLoss", "NTXentLoss", "PIRLLoss", "PatientQueue", "RotationLoss",
    "SupConLoss", "SwaVHybridLoss", "SwaVLoss", "adaptive_loss", "adaptive_target",
    "cltci_moco_loss", "dice_ce_loss", "get_loss", "kmeans_1d", "label_positive_mask",
    "le_curve", "list_losses", "local_conflict_fraction", "local_conflict_loss", "mae_loss",
    "mask_from_indices", "masked_contrastive_loss", "moco_loss", "momentum_update", "nce_loss",
    "nt_xent_loss", "patchify", "pirl_loss", "random_token_mask", "region_conflict_loss",
    "register_loss", "rotation_batch", "rotation_loss", "sinkhorn", "soft_dice_per_class",
    "split_modalities", "square_flatten", "supcon_loss", "swav_codes", "swav_loss_per_sample",
    "unpatchify",
]
