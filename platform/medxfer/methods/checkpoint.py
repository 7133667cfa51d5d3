"""Checkpoints of the training loop: one directory per reported epoch.

Layout: ``state.pt`` (``torch.save`` of plain dicts/tensors, loadable with
``weights_only=True``) holding ``modules`` (name -> state dict), ``optimizer``, ``scheduler``,
``progress`` (the loop's :class:`~medxfer.methods.loop.Progress` as a dict: epoch, best-so-far,
early-stopping counters, done flag), ``best_modules`` (the selected epoch's weights) and ``rng``
(torch, CUDA, numpy, python). The final report adds the method's artifact files beside it
(``model.pt``, ``encoder.pt``, ``dce.pt``).

No Ray or MLflow here: a checkpoint directory is handed to :meth:`Session.report`.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medxfer.errors import MedxferInputError
from medxfer.methods.session import Session, unwrap

STATE_FILE = "state.pt"


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict (DDP wrapper removed)."""
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


def scheduler_state(sched) -> dict:
    """The scheduler's state without the multiplier objects (weights_only friendly)."""
    return {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}


def save_state(directory: str | Path, *, modules: dict[str, nn.Module], optimizer, scheduler,
               progress: dict[str, Any], best_modules: dict[str, dict] | None,
               extra_files: dict[str, Any] | None = None) -> None:
    """Write ``state.pt`` (and ``extra_files``: file name -> payload) into ``directory``."""
    state = {"modules": {k: clone_state(m) for k, m in modules.items()},
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "scheduler": scheduler_state(scheduler) if scheduler is not None else None,
             "progress": progress, "best_modules": best_modules, "rng": rng_state()}
    torch.save(state, Path(directory) / STATE_FILE)
    for name, payload in (extra_files or {}).items():
        torch.save(payload, Path(directory) / name)


def load_state(directory: str | Path) -> dict[str, Any]:
    """Read ``state.pt`` with ``weights_only=True``.

    Raises:
        MedxferInputError: the directory holds no ``state.pt``.
    """
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise MedxferInputError("not a medxfer checkpoint (no state.pt)", path=str(directory))
    return torch.load(path, map_location="cpu", weights_only=True)


def restore(directory: str | Path, *, modules: dict[str, nn.Module], optimizer,
            scheduler) -> dict[str, Any]:
    """Load a checkpoint into the built modules, optimizer, scheduler and the RNGs.

    Call it after the modules and optimizer are built and before training. Returns the whole
    state (its ``progress`` and ``best_modules`` are the loop's).
    """
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
    return state


def report(session: Session, metrics: dict[str, float], **save_kwargs) -> None:
    """Report ``metrics`` from every rank; rank 0 also writes and passes a checkpoint
    (``save_kwargs`` as for :func:`save_state`)."""
    if session.world_rank != 0:
        session.report(metrics, None)
        return
    directory = tempfile.mkdtemp(prefix="medxfer-ckpt-")
    try:
        save_state(directory, **save_kwargs)
        session.report(metrics, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
