"""Parts every method's loop composes: data, optimiser, schedule, selection, checkpoints.

No Ray or MLflow here (see :mod:`medxfer.methods.session`).

Checkpoint layout (one directory per reported epoch): ``state.pt`` (``torch.save`` of plain
dicts/tensors, loadable with ``weights_only=True``) holding ``modules`` (name -> state dict),
``optimizer``, ``scheduler``, ``progress`` (:class:`Progress`: epoch, best-so-far, early-stopping
counters, done flag), ``best_modules`` (the selected epoch's weights) and ``rng`` (torch, CUDA,
numpy, python). The final report adds the selected model as its own file (``model.pt`` or
``encoder.pt``), a plain state dict that :func:`medxfer.models.create_backbone` loads.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medxfer.config import ExperimentConfig, TrainConfig
from medxfer.errors import MedxferInputError
from medxfer.methods.session import Session, to_device, unwrap

STATE_FILE = "state.pt"


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


def scheduler_state(sched) -> dict:
    """The scheduler's state without the multiplier objects (weights_only friendly)."""
    return {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}


# ----------------------------------------------------------------- selection / stopping

def _better(a: float, b: float | None, mode: str) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return False
    if b is None:
        return True
    return a < b if mode == "min" else a > b


@dataclass
class Progress:
    """Epoch counter, best-so-far (selection) and early-stopping state; saved in checkpoints.

    Attributes:
        epoch: last completed epoch (1-based; 0 before training).
        best_value / best_epoch / best_metrics: the selected epoch by ``select_by``/``mode``.
        es_best / bad_epochs: early-stopping metric's best and epochs since it improved.
        done: the final step was reported (a resume then does nothing).
    """

    epoch: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    best_metrics: dict[str, float] = field(default_factory=dict)
    es_best: float | None = None
    bad_epochs: int = 0
    done: bool = False

    def update(self, metrics: dict[str, float], t: TrainConfig) -> bool:
        """Record epoch ``metrics["epoch"]``; return True if it is the new selected epoch."""
        self.epoch = int(metrics["epoch"])
        if t.early_stopping_metric in metrics:
            if _better(metrics[t.early_stopping_metric], self.es_best, t.early_stopping_mode):
                self.es_best, self.bad_epochs = float(metrics[t.early_stopping_metric]), 0
            else:
                self.bad_epochs += 1
        if t.select_by not in metrics:
            raise MedxferInputError(f"train.select_by {t.select_by!r} is not a reported metric; "
                                    f"reported: {', '.join(sorted(metrics))}",
                                    field="train.select_by")
        if _better(metrics[t.select_by], self.best_value, t.mode) or self.best_epoch == 0:
            self.best_value = float(metrics[t.select_by])
            self.best_epoch, self.best_metrics = self.epoch, dict(metrics)
            return True
        return False

    def should_stop(self, t: TrainConfig) -> bool:
        """All epochs done, or ``patience`` epochs without improvement of the stopping metric."""
        return self.epoch >= t.epochs or (t.patience is not None and self.bad_epochs >= t.patience)


# --------------------------------------------------------------------------- checkpoints

def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict."""
    return {k: v.detach().to("cpu", copy=True) for k, v in unwrap(module).state_dict().items()}


def rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states as tensors and plain values."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)),
                       "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                       "cached_gaussian": float(np_state[4])},
             "python": _to_lists(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(directory: str | Path, *, modules: dict[str, nn.Module], optimizer, scheduler,
               progress: Progress, best_modules: dict[str, dict] | None,
               extra_files: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
    """Write ``state.pt`` (and ``extra_files``: name -> state dict) into ``directory``."""
    state = {"modules": {k: clone_state(m) for k, m in modules.items()},
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "scheduler": scheduler_state(scheduler) if scheduler is not None else None,
             "progress": asdict(progress), "best_modules": best_modules, "rng": rng_state()}
    torch.save(state, Path(directory) / STATE_FILE)
    for name, sd in (extra_files or {}).items():
        torch.save(sd, Path(directory) / name)


def load_state(directory: str | Path) -> dict[str, Any]:
    """Read ``state.pt`` with ``weights_only=True``."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise MedxferInputError("not a medxfer checkpoint (no state.pt)", path=str(directory))
    return torch.load(path, map_location="cpu", weights_only=True)


def restore(session: Session, *, modules: dict[str, nn.Module], optimizer,
            scheduler) -> tuple[Progress, dict[str, dict] | None]:
    """Resume from the session's checkpoint if there is one; return progress and best weights.

    Restores module weights, optimizer, scheduler and RNG states (call it after the modules
    and optimizer are built, before training).
    """
    directory = session.get_checkpoint()
    if directory is None:
        return Progress(), None
    state = load_state(directory)
    for name, m in modules.items():
        unwrap(m).load_state_dict(state["modules"][name])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        sd = dict(state["scheduler"])
        sd["lr_lambdas"] = [None] * len(scheduler.lr_lambdas)
        scheduler.load_state_dict(sd)
    set_rng_state(state["rng"])
    return Progress(**state["progress"]), state["best_modules"]


def report(session: Session, metrics: dict[str, float], **save_kwargs) -> None:
    """Report ``metrics`` from every rank; rank 0 also writes and passes a checkpoint."""
    if session.world_rank != 0:
        session.report(metrics, None)
        return
    directory = tempfile.mkdtemp(prefix="medxfer-ckpt-")
    try:
        save_state(directory, **save_kwargs)
        session.report(metrics, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
