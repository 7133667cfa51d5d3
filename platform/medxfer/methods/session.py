"""The one interface through which a method reports epochs and checkpoints.

Method code never imports Ray or MLflow. A training loop asks :func:`get_session` for the
:class:`Session` that the launcher (``medxfer.train``) bound around it:

* ``medxfer.train.sessions.RayTrainSession``: inside a ``TorchTrainer`` worker
  (``ray.train.report`` from every rank, the checkpoint from rank 0 only);
* ``medxfer.train.sessions.TuneSession``: inside a Ray Tune function trainable (fast path);
* :class:`LocalSession`: a plain in-process loop (``medxfer train`` fast path, tests). It is
  also what :func:`get_session` returns when nothing was bound.

A checkpoint is a *directory*: the method writes files into a temporary directory and passes it
to :meth:`Session.report`, which persists (copies) it before returning; the method may then
delete it. :meth:`Session.get_checkpoint` returns a directory to resume from, or None.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Session(Protocol):
    """What a training loop may ask of the process it runs in.

    Attributes:
        world_rank: this worker's rank (0 on the fast path).
        world_size: number of training workers (1 on the fast path).
        device: where the model and batches go.
    """

    world_rank: int
    world_size: int
    device: torch.device

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        """Report one step's metrics (every rank) and optionally a checkpoint directory (rank 0
        only; other ranks pass None). Persists the directory before returning."""

    def get_checkpoint(self) -> str | None:
        """The directory of the checkpoint to resume from, or None for a fresh start."""

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move to :attr:`device`; wrap in DistributedDataParallel when ``world_size > 1``."""

    def prepare_loader(self, loader: torch.utils.data.DataLoader, *,
                       shard: bool = True) -> torch.utils.data.DataLoader:
        """Batches on :attr:`device`; ``shard`` splits the data across ranks (training)."""

    def all_reduce_mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (identity for one worker)."""

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm statistics) to every rank, so that evaluation and
        model selection agree across ranks (no-op for one worker)."""


class SingleProcess:
    """The single-process parts of a :class:`Session` (one worker, no collectives): shared by
    :class:`LocalSession` and the Ray Tune fast-path session."""

    world_rank = 0
    world_size = 1
    device: torch.device

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def prepare_loader(self, loader, *, shard: bool = True):
        return loader

    def all_reduce_mean(self, value: float) -> float:
        return float(value)

    def sync_buffers(self, model: nn.Module) -> None:
        return None


class LocalSession(SingleProcess):
    """A plain in-process session: one worker, checkpoints copied under ``storage_dir``.

    Args:
        storage_dir: where reported checkpoints go (``checkpoint_000001``, ... by report).
        resume_from: a checkpoint directory to resume from (what :meth:`get_checkpoint` returns).
        on_report: called as ``on_report(metrics, persisted_checkpoint_dir_or_None)`` after each
            report (progress display, MLflow logging).
        device: default CPU.
        keep: how many of the latest checkpoints to keep (None: all).

    Attributes:
        history: the reported metrics, in order.
        checkpoints: the persisted checkpoint directories, in order (pruned ones removed).
    """

    world_rank = 0
    world_size = 1

    def __init__(self, storage_dir: str | Path, *, resume_from: str | Path | None = None,
                 on_report: Callable[[dict[str, float], str | None], None] | None = None,
                 device: torch.device | str | None = None, keep: int | None = None):
        self.storage_dir = Path(storage_dir)
        self.resume_from = None if resume_from is None else str(resume_from)
        self.on_report = on_report
        self.device = torch.device(device or "cpu")
        self.keep = keep
        self.history: list[dict[str, float]] = []
        self.checkpoints: list[str] = []

    @property
    def latest_checkpoint(self) -> str | None:
        """The last persisted checkpoint directory."""
        return self.checkpoints[-1] if self.checkpoints else None

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        self.history.append(dict(metrics))
        persisted = None
        if checkpoint_dir is not None:
            dest = self.storage_dir / f"checkpoint_{len(self.history):06d}"
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(checkpoint_dir, dest)
            persisted = str(dest)
            self.checkpoints.append(persisted)
            if self.keep is not None:
                for old in self.checkpoints[:-self.keep]:
                    shutil.rmtree(old, ignore_errors=True)
                self.checkpoints = self.checkpoints[-self.keep:]
        if self.on_report is not None:
            self.on_report(dict(metrics), persisted)

    def get_checkpoint(self) -> str | None:
        return self.resume_from



_CURRENT: list[Session] = []


def get_session() -> Session:
    """The session bound by the launcher (:func:`use_session`), else a fresh
    :class:`LocalSession` writing under a temporary directory."""
    if _CURRENT:
        return _CURRENT[-1]
    import tempfile

    session = LocalSession(tempfile.mkdtemp(prefix="medxfer-session-"))
    _CURRENT.append(session)
    return session


@contextlib.contextmanager
def use_session(session: Session) -> Iterator[Session]:
    """Bind ``session`` for the loops run inside the ``with`` block."""
    _CURRENT.append(session)
    try:
        yield session
    finally:
        _CURRENT.remove(session)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors (also inside tuples/lists) to ``device``; a no-op when already there."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch
