"""The training recipes of ``swav``: multi-crop views, LARS, the per-iteration schedule and the
prototype freeze, as named presets (``method_config.recipe``).

``seed001`` (default), seed ``001_a9715376ac5cbd5d.txt`` Table I (2D) and sec. III-C:

* multi-crop: 2 + 6 crops of 224 and 92 px at 224 px (here ``data.size`` and
  ``round(data.size * 92 / 224)``), codes ("assignments") from crops 0 and 1, the large ones;
  every crop is the image rescaled by s in [0.1, 0.7] of an original of the paper's geometry
  and cropped at a random place as the final step (:class:`medxfer.data.multicrop.MultiCrop`,
  ``rescale_crop``);
* augmentation (III-C) before the crop: energy-band normalisation (eq. 8; with
  ``energy_reference``, the file of ``medxfer data energy-reference``, else each image's own
  energies), gamma in [1.8, 2.6], linear a I + b (the ``medical_ssl`` preset's steps);
* LARS (SGD momentum ``train.momentum``, trust 0.001) with a linear warm-up over
  ``warmup_epochs`` then a cosine from ``train.lr`` (0.6) to ``final_lr`` (0.0006), per
  iteration (:mod:`medxfer.models.optim`); weight decay 1e-6 (``train.weight_decay``);
* prototypes frozen for the first ``freeze_prototypes_iters`` (10,000) *iterations*.

``simple``: two random-resized crops (0.6-1.0) at ``data.size`` with rotation and a flip,
``train.optimizer`` with its per-epoch ``train.scheduler``, no freeze: the plain SwAV-style
baseline.

A recipe fills every field left unset; fields written in the YAML win. Departures: Table I's
"[600, 1200]" and "[0.1, 0.1]" rows have no stated meaning (read as SwAV's crop-scale
arguments, they do not fit the III-C rescale); the seed gives no warm-up length, so SwAV's
default (10 epochs from 0) is used.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from medxfer.models.optim import FINAL_LR, FREEZE_PROTOTYPES_ITERS, warmup_cosine_lr

#: Seed 001 Table I (2D): small crop side / large crop side.
SMALL_PER_LARGE = 92 / 224

RECIPES: dict[str, dict[str, Any]] = {
    "seed001": {"crops": [2, 6], "crop_sizes": None, "crop_mode": "rescale_crop",
                "crop_scales": [[0.1, 0.7], [0.1, 0.7]], "crops_for_assign": [0, 1],
                "augment": "medical_ssl", "optimizer": "lars", "lr_schedule": "warmup_cosine",
                "final_lr": FINAL_LR, "warmup_epochs": 10.0,
                "freeze_prototypes_iters": FREEZE_PROTOTYPES_ITERS},
    "simple": {"crops": [2], "crop_sizes": None, "crop_mode": "random_resized_crop",
               "crop_scales": [[0.6, 1.0]], "crops_for_assign": [0, 1], "augment": "basic",
               "optimizer": "train", "lr_schedule": "train", "final_lr": 0.0,
               "warmup_epochs": 0.0, "freeze_prototypes_iters": 0},
}


def fill_recipe(data: Any) -> Any:
    """Pydantic ``before`` validator: the recipe's values for the fields not given."""
    if not isinstance(data, dict):
        return data
    name = data.get("recipe", "seed001")
    recipe = RECIPES.get(name)
    if recipe is None:
        return data  # the field's own Literal check reports the bad name
    return {**{k: v for k, v in recipe.items() if data.get(k) is None}, **{
        k: v for k, v in data.items() if v is not None}}


def crop_sizes(opts, size: int) -> list[int]:
    """``crop_sizes``, else ``data.size`` for the first group and the seed's ratio after."""
    if opts.crop_sizes is not None:
        return list(opts.crop_sizes)
    return [size] + [max(1, round(size * SMALL_PER_LARGE))] * (len(opts.crops) - 1)


def per_crop_pipeline(cfg, opts, root: str) -> list[dict]:
    """The augmentation each crop gets besides its crop step: ``data.transforms``, else the
    recipe's (``medical_ssl``: III-C intensity steps; ``basic``: rotation and a flip)."""
    from pathlib import Path

    from medxfer.data.presets import medical_ssl

    if cfg.data.transforms:
        return list(cfg.data.transforms)
    if opts.augment == "basic":
        return [{"name": "random_rotation", "degrees": 15},
                {"name": "random_horizontal_flip", "p": 0.5}]
    ref = opts.energy_reference
    if ref is not None and not Path(ref).is_absolute():
        ref = str(Path(root) / ref)
    return medical_ssl(cfg.data.size, energy_reference=ref)[:-1]  # the crop is MultiCrop's


def multicrop_views(cfg, opts):
    """The item transform: ``sum(crops)`` views of one image (:class:`MultiCrop`)."""
    from medxfer.data.multicrop import PAPER_SIDE_PER_CROP, MultiCrop

    if len(opts.crop_scales) != len(opts.crops):
        from medxfer.errors import MedxferInputError

        raise MedxferInputError(f"crop_scales needs one range per crop group ({len(opts.crops)})"
                                f", got {len(opts.crop_scales)}",
                                field="method_config.crop_scales")
    sizes = crop_sizes(opts, cfg.data.size)
    ref = sizes[0] * PAPER_SIDE_PER_CROP if opts.crop_mode == "rescale_crop" else None
    return MultiCrop(opts.crops, sizes, opts.crop_scales,
                     transform=per_crop_pipeline(cfg, opts, cfg.data.root), crop=opts.crop_mode,
                     crops_for_assign=opts.crops_for_assign, reference_size=ref)


def iters_per_epoch(n: int, batch_size: int, world_size: int, drop_last: bool) -> int:
    """Optimizer steps per epoch of a rank: ``n`` items sharded over ``world_size`` ranks."""
    per_rank = math.ceil(n / world_size) if world_size > 1 else n
    if drop_last and n > batch_size:
        return max(1, per_rank // batch_size)
    return max(1, math.ceil(per_rank / batch_size))


class IterationSchedule(nn.Module):
    """The iteration counter (a checkpointed buffer) and what depends on it: the learning rate
    of the warm-up + cosine schedule and the prototype freeze.

    Args:
        opts: the swav options (``lr_schedule``, ``final_lr``, ``warmup_epochs``,
            ``freeze_prototypes_iters``).
        base_lr: ``train.lr``.
        epochs: ``train.epochs``.
        per_epoch: optimizer steps per epoch.
    """

    def __init__(self, opts, base_lr: float, epochs: int, per_epoch: int):
        super().__init__()
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.total = epochs * per_epoch
        self.warmup = min(self.total, round(opts.warmup_epochs * per_epoch))
        self.base_lr, self.final_lr = base_lr, opts.final_lr
        self.per_iteration = opts.lr_schedule == "warmup_cosine"
        self.freeze_iters = opts.freeze_prototypes_iters

    @property
    def now(self) -> int:
        return int(self.iteration)

    def lr(self, iteration: int | None = None) -> float:
        """The learning rate at ``iteration`` (default: the current one)."""
        it = self.now if iteration is None else iteration
        return warmup_cosine_lr(it, self.total, base_lr=self.base_lr, final_lr=self.final_lr,
                                warmup_iters=self.warmup)

    def set_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Write the current iteration's rate into every group (per-iteration schedule only)."""
        if self.per_iteration:
            for group in optimizer.param_groups:
                group["lr"] = self.lr()

    def frozen(self) -> bool:
        """Prototypes do not update at the current iteration."""
        return self.now < self.freeze_iters

    def step(self) -> None:
        self.iteration += 1
