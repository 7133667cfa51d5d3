"""Parts the methods compose: data, optimiser and schedule, evaluation.

No Ray or MLflow here (see :mod:`medxfer.methods.session`). The epoch loop that uses them is
:mod:`medxfer.methods.loop`; checkpoints are :mod:`medxfer.methods.checkpoint`.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medxfer.config import ExperimentConfig, TrainConfig
from medxfer.errors import MedxferInputError
from medxfer.methods.session import to_device


# ------------------------------------------------------------------------------------ data

class WithPatients(Dataset):
    """Items ``(x, y, patient_id)`` from a ``MedMNISTDataset`` (patient -1 when unknown)."""

    def __init__(self, base):
        self.base = base
        p = getattr(base, "patients", None)
        self.patients = (np.asarray(p, dtype=np.int64).reshape(-1) if p is not None
                         else np.full(len(base), -1, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x, y, torch.as_tensor(int(self.patients[i]))


def load_datasets(cfg: ExperimentConfig, *, train_transform: Callable | None = None,
                  eval_transform: Callable | None = None) -> dict:
    """``{"train", "val", "test"}`` of the target (``medxfer.data.load_target``).

    Transforms from ``data.transforms``/``data.eval_transforms`` override the arguments.
    """
    from medxfer.data import build_transform, load_target

    d = cfg.data
    if d.transforms is not None:
        train_transform = build_transform(d.transforms)
    if d.eval_transforms is not None:
        eval_transform = build_transform(d.eval_transforms)
    return load_target(d.root, d.flag, d.size, n_train_per_class=d.n_train_per_class,
                       n_val_per_class=d.n_val_per_class, seed=d.seed,
                       transform=train_transform, eval_transform=eval_transform,
                       as_rgb=d.as_rgb)


def in_chans(cfg: ExperimentConfig, dataset) -> int:
    """``model.in_chans``, else the dataset's channels; a mismatch is an input error."""
    have = dataset.n_channels
    if cfg.model.in_chans is not None and cfg.model.in_chans != have:
        raise MedxferInputError(f"model.in_chans is {cfg.model.in_chans} but {cfg.data.flag} "
                                f"images have {have} channels (set data.as_rgb: true for 3)",
                                field="model.in_chans")
    return have


def make_loader(dataset, cfg: TrainConfig, *, shuffle: bool, drop_last: bool = False,
                batch_size: int | None = None) -> DataLoader:
    """A DataLoader whose shuffling is seeded per epoch by :func:`start_epoch`."""
    return DataLoader(dataset, batch_size=batch_size or cfg.batch_size, shuffle=shuffle,
                      drop_last=drop_last, num_workers=cfg.num_workers,
                      generator=torch.Generator() if shuffle else None,
                      persistent_workers=False)


def start_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Seed this epoch's order: the same (seed, epoch) gives the same batches after a resume."""
    inner = getattr(loader, "_dataloader", loader)
    sampler = getattr(inner, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    gen = getattr(inner, "generator", None)
    if gen is not None:
        gen.manual_seed(int(seed) * 1_000_003 + int(epoch))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialisation, augmentations)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------ optimisation

def build_optimizer(params: Iterable[nn.Parameter], t: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum, or Adam (seed 000 App. B), with ``weight_decay``."""
    params = list(params)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def lr_factor(t: TrainConfig, epoch: int) -> float:
    """Multiplier of ``lr`` at 0-based ``epoch``.

    ``lambda``: ``lambda_lr ** epoch`` (seed ``000_3dd3de5c534b555f.txt`` App. B: LambdaLR with
    lambda in [0.6, 1], a multiplicative factor per epoch); ``cosine``: half a cosine from 1 to
    0 over ``epochs``; ``none``: 1.
    """
    if t.scheduler == "lambda":
        return t.lambda_lr ** epoch
    if t.scheduler == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(epoch, t.epochs) / t.epochs))
    return 1.0


class _Factor:
    """Picklable LambdaLR multiplier (a callable object, so no lambda in the state dict)."""

    def __init__(self, t: TrainConfig):
        self.t = t

    def __call__(self, epoch: int) -> float:
        return lr_factor(self.t, epoch)


def build_scheduler(opt: torch.optim.Optimizer, t: TrainConfig):
    """A LambdaLR stepped once per epoch with :func:`lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(opt, _Factor(t))


# ---------------------------------------------------------------------------- evaluation

@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device,
            loss_fn: Callable) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, labels and scores (softmax or sigmoid) of ``model`` on ``loader``."""
    model.eval()
    total, n, ys, scores = 0.0, 0, [], []
    for x, y, *_ in loader:
        x, y = to_device(x, device), to_device(y, device)
        logits = model(x)
        total += float(loss_fn(logits, y)) * len(x)
        n += len(x)
        ys.append(y.cpu().numpy())
        scores.append((torch.sigmoid(logits) if y.ndim == 2 else logits.softmax(1)).cpu().numpy())
    return total / max(n, 1), np.concatenate(ys), np.concatenate(scores)


def classify_loss(multilabel: bool) -> nn.Module:
    """BCE-with-logits for multi-label targets (float multi-hot), else cross-entropy."""
    return nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, task: str,
             loss_fn: Callable, prefix: str) -> dict[str, float]:
    """``<prefix>loss`` and :func:`medxfer.evaluation.metrics.classification_metrics`."""
    from medxfer.evaluation.metrics import classification_metrics

    loss, y, s = predict(model, loader, device, loss_fn)
    out = {f"{prefix}loss": loss}
    out.update(classification_metrics(task, y, s, prefix=prefix))
    return out

