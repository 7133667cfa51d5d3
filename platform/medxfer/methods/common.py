"""Parts the methods compose: data, optimiser and schedule, evaluation.

No Ray or MLflow here (see :mod:`medxfer.methods.session`). The epoch loop that uses them is
:mod:`medxfer.methods.loop`; checkpoints are :mod:`medxfer.methods.checkpoint`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medxfer.config import DataConfig, ExperimentConfig, TrainConfig
from medxfer.errors import MedxferInputError
from medxfer.methods.session import to_device

if TYPE_CHECKING:
    from medxfer.data.medmnist import DatasetInfo


# ------------------------------------------------------------------------------------ data

class WithPatients(Dataset):
    """Items ``(x, y, patient_id)`` of a dataset with ``patients`` (patient -1 when unknown)."""

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


@dataclass
class MethodData:
    """The datasets of one run: a cell's selection (:mod:`medxfer.data.protocol`) as datasets.

    Attributes:
        train: what the method trains on (self-supervised methods: every training image).
        val: model selection.
        labelled: the training images whose labels may be used (a label fraction or count of
            ``train``; ``train`` itself otherwise): supervised training and linear probes.
        test_sets: ``{"test": the source's test part, "<name>_test": an OOD set's test part}``
            (empty in a search cell: its trials never see a test image), plus ``ood_test`` in
            a shortcut cell (the test part with the correlation reversed); the loop scores the
            selected model on each (metrics ``test_*``, ``<name>_test_*``).
        info: the source's task and labels.
        params: ``n_labelled`` and ``selection_crc`` (run params, with the loop's ``n_train``).

    ``data["train"]``, ``["val"]``, ``["labelled"]``, ``["test"]`` index it like a dict.
    """

    train: Dataset
    val: Dataset
    labelled: Dataset
    test_sets: dict[str, Dataset]
    info: DatasetInfo
    params: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Dataset:
        if key in ("train", "val", "labelled"):
            return getattr(self, key)
        return self.test_sets[key]


def load_datasets(cfg: ExperimentConfig, *, train_transform: Callable | None = None,
                  eval_transform: Callable | None = None, data: DataConfig | None = None
                  ) -> MethodData:
    """The run's datasets from ``data`` (default ``cfg.data``), ``cfg.protocol`` and
    ``cfg.cell`` (:mod:`medxfer.data.protocol`); any source (``.npz`` or manifest).

    Transforms from ``data.transforms``/``data.eval_transforms`` override the arguments;
    ``train_transform`` goes to ``train``/``labelled``, ``eval_transform`` to val and the test
    sets (an OOD set's own ``eval_transforms`` win for it).
    """
    from medxfer.data import build_transform
    from medxfer.data.protocol import select_cell, select_transfer
    from medxfer.data.shortcut_sets import part_dataset
    from medxfer.data.sources import load_source

    d = data or cfg.data
    train_t = build_transform(d.transforms) if d.transforms is not None else train_transform
    eval_t = build_transform(d.eval_transforms) if d.eval_transforms is not None \
        else eval_transform
    source, protocol, cell = load_source(d), cfg.protocol, cfg.cell
    others = {}
    if cell is not None and cell.phase == "transfer":
        sel = select_transfer(source, protocol, cell)
    else:
        if protocol is not None and (cell is None or cell.phase == "train"):
            others = {n: load_source(t.resolve(d)) for n, t in protocol.test_sets.items()}
        sel = select_cell(source, d, protocol, cell, others)

    def part(name: str, transform):  # a shortcut cell's parts carry its confounder
        shortcut = protocol.shortcut if protocol is not None else None
        return part_dataset(source, sel, name, transform, shortcut,
                            seed=protocol.seed if protocol is not None else 0)

    tests = {} if sel.test is None else {"test": part("test", eval_t)}
    if sel.ood is not None:
        tests["ood_test"] = part("ood", eval_t)
    for name, rows in sel.test_sets.items():
        own = protocol.test_sets[name].eval_transforms
        tests[f"{name}_test"] = others[name].dataset(
            rows, build_transform(own) if own is not None else eval_t)
    return MethodData(part("train", train_t), part("val", eval_t), part("labelled", train_t),
                      tests, source.info,
                      {"n_labelled": float(len(sel.labelled)),
                       "selection_crc": float(sel.crc())})


def in_chans(cfg: ExperimentConfig, dataset) -> int:
    """``model.in_chans``, else the dataset's channels; a mismatch is an input error."""
    have = getattr(dataset, "n_channels", None)
    if have is None:  # a wrapper (two views, patients): the dataset it wraps
        have = dataset.base.n_channels
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

