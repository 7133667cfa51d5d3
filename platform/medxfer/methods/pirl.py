"""pirl: pretext-invariant representation learning (jigsaw) with a memory bank.

Seed ``003_4aa9fa56a835f729.txt`` Table I, row "PIRL" (sec. IV, baseline (2), ref. [8]; Misra &
van der Maaten 2020). Each training image I gives an augmented view and, from an independent
augmentation, its jigsaw version I^t (3 x 3 cells, a random tile of 64/75 of each cell, shuffled:
the ``jigsaw`` transform). One shared encoder embeds the view and every tile; f (a linear map to
128-d) gives f(v_I), g (:class:`medxfer.models.JigsawHead`: per-tile projection, concatenated in
the shuffled order, linear to 128-d) gives g(v_I^t). The loss is eq. 5,
lambda L_NCE(m_I, g(v_I^t)) + (1 - lambda) L_NCE(m_I, f(v_I)), with m_I the memory-bank entry
of I (a moving average of f(v_I), momentum 0.5) and N negatives drawn from the bank
(:class:`medxfer.losses.PIRLLoss`); the bank is updated with f(v_I) after the step and is
checkpointed with the run. Paper defaults: tau 0.07, lambda 0.5, N = 32000.

Validation uses the same loss without touching the bank: a validation image has no bank entry,
so its own f(v_I) (detached) stands in for m_I, and negatives come from the training bank.

It runs in the contrastive family's loop (:mod:`medxfer.methods.contrastive`): per-epoch
``train_loss``/``val_loss``, checkpoints, selection, an optional linear probe, and
``encoder.pt`` (the shared encoder without f and g) for ``finetune``/``segment``.

[0] PIRL, 2020, https://arxiv.org/abs/1912.01991
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from medxfer.losses.pirl import BANK_MOMENTUM, LAMBDA, N_NEGATIVES, TEMPERATURE
from medxfer.methods import contrastive
from medxfer.methods.contrastive import ContrastiveParts
from medxfer.methods.registry import Method, MethodOptions, register_method


class PIRLOptions(MethodOptions):
    """``method_config`` of pirl (the paper's defaults).

    Attributes:
        temperature: tau of h (eq. 3).
        lam: lambda of eq. 5.
        n_negatives: N negatives drawn from the bank per step.
        bank_momentum: weight of the old bank entry in its moving average.
        dim: width of f, g and the bank.
        grid, tile_frac: the jigsaw (cells per side, tile side / cell side).
        bank_init: ``random`` unit vectors (the paper's memory bank) or ``features``: f(v_I)
            of the initial network (one pass over the training set before epoch 1), so the
            loss does not first rise while random entries are replaced.
        probe_epochs, probe_lr: the optional linear probe.
    """

    temperature: float = Field(TEMPERATURE, gt=0)
    lam: float = Field(LAMBDA, ge=0, le=1)
    n_negatives: int = Field(N_NEGATIVES, ge=1)
    bank_momentum: float = Field(BANK_MOMENTUM, ge=0, le=1)
    dim: int = Field(128, ge=1)
    grid: int = Field(3, ge=2)
    tile_frac: float = Field(64 / 75, gt=0, le=1)
    bank_init: Literal["random", "features"] = "random"
    probe_epochs: int = Field(0, ge=0)
    probe_lr: float = Field(1e-2, gt=0)


class PIRLNet(nn.Module):
    """Shared encoder, f and g: ``forward(view, tiles) -> (f(v_I), g(v_I^t))``, each (B, dim).

    Shapes: ``view`` (B, C, H, W), ``tiles`` (B, T, C, t, t).
    """

    def __init__(self, encoder: nn.Module, dim: int, n_tiles: int):
        from medxfer.models import JigsawHead

        super().__init__()
        self.encoder = encoder
        self.f = nn.Linear(encoder.embed_dim, dim)
        self.g = JigsawHead(encoder.embed_dim, dim, dim, n_tiles)

    def forward(self, view: Tensor, tiles: Tensor) -> tuple[Tensor, Tensor]:
        from medxfer.models import embed_tiles

        return self.f(self.encoder(view)), self.g(embed_tiles(self.encoder, tiles))


class ViewAndJigsaw:
    """An item's views: an augmented image and the jigsaw tiles of another augmentation."""

    def __init__(self, pipeline, jigsaw):
        self.pipeline, self.jigsaw = pipeline, jigsaw

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.pipeline(x), self.jigsaw(self.pipeline(x))


class Indexed(Dataset):
    """Items ``(views, y, index)``: the bank slot of every training image."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        views, y, _ = self.base[i]
        return views, y, torch.as_tensor(i)


def other_entries(bank: Tensor, exclude: Tensor | None, n: int) -> Tensor:
    """``n`` bank entries drawn uniformly with replacement from the slots not in ``exclude``
    (the batch's own images: a negative is another image, as in a dataset far larger than the
    batch). Shape: (n, dim)."""
    keep = torch.ones(len(bank), dtype=torch.bool, device=bank.device)
    if exclude is not None:
        keep[exclude.to(bank.device).long()] = False
    slots = keep.nonzero().flatten()
    if len(slots) == 0:
        slots = torch.arange(len(bank), device=bank.device)
    return bank[slots[torch.randint(0, len(slots), (n,)).to(slots.device)]]


@torch.no_grad()
def fill_bank(net: PIRLNet, criterion, train_set, batch_size: int = 64) -> None:
    """Every bank entry set to f(v_I) of the initial network (eval mode, CPU; augmented views
    as in training). Draws from the global random stream: call it before the loop seeds its
    checkpointed state, i.e. while building the parts."""
    from torch.utils.data import DataLoader

    net.eval()
    for (view, _), _, index in DataLoader(train_set, batch_size=batch_size):
        f = F.normalize(net.f(net.encoder(view)), dim=1)
        criterion.bank.bank[index] = f
    net.train()


def build_parts(cfg, opts: PIRLOptions, chans: int) -> ContrastiveParts:
    from medxfer.data.jigsaw import Jigsaw
    from medxfer.losses import PIRLLoss, pirl_loss
    from medxfer.models import create_backbone

    jigsaw = Jigsaw(opts.grid, opts.tile_frac)
    splits = contrastive.view_splits(cfg, ViewAndJigsaw(contrastive.pipeline(cfg), jigsaw))
    train_set, val_set = Indexed(splits["train"]), Indexed(splits["val"])
    encoder = create_backbone(cfg.model.backbone, in_chans=chans, weights=cfg.model.weights)
    net = PIRLNet(encoder, opts.dim, opts.grid ** 2)
    criterion = PIRLLoss(len(train_set), opts.dim, opts.temperature, opts.lam, opts.n_negatives,
                         opts.bank_momentum, seed=cfg.train.seed)

    if opts.bank_init == "features":
        fill_bank(net, criterion, train_set)

    def loss(net, batch, train: bool):
        (view, tiles), _, index = batch
        f, g = net(view, tiles)
        bank = criterion.bank
        if not train:  # no bank entry for a validation image: its own f stands in for m_I
            return pirl_loss(f, g, F.normalize(f.detach(), dim=1),
                             other_entries(bank.bank, None, opts.n_negatives), len(train_set),
                             opts.temperature, opts.lam)
        out = pirl_loss(f, g, bank.get(index), other_entries(bank.bank, index, opts.n_negatives),
                        len(train_set), opts.temperature, opts.lam)
        bank.update(index, f)
        return out

    return ContrastiveParts(net=net, loss=loss, extra={"bank": criterion},
                            train_set=train_set, val_set=val_set)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """PIRL pretraining on ``data.flag``; see the module docstring."""
    contrastive.run(config, build_parts)


METHOD = register_method(Method(
    name="pirl", train_loop_per_worker=train_loop_per_worker, config_schema=PIRLOptions,
    defaults=contrastive.DEFAULTS,
    description="PIRL: jigsaw-invariant NCE against a memory bank; saves the encoder"))
