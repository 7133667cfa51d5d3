"""Helpers for the method and launcher tests: tiny synthetic data and configs (tiny_cnn, 28x28)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread inside the block: tiny models on the shared 2-core machine run
    faster with one (a second thread mostly spins)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synth(root: Path) -> Path:
    from medxfer.data.synth import synthesize

    synthesize(root, size=28, n_per_class=16, modalities=["synthpneumonia", "synthchest"])
    return root


def make_config(root, method="finetune", *, method_config=None, flag="synthpneumonia",
                scaling=None, backbone="tiny_cnn", **train) -> dict:
    """A validated ExperimentConfig dump for ``method`` on the tiny synthetic data."""
    from medxfer.methods.experiment import parse_experiment

    t = {"epochs": 3, "batch_size": 8, "lr": 0.05, "scheduler": "none"}
    t.update(train)
    return parse_experiment({
        "method": method, "method_config": method_config or {},
        "data": {"root": str(root), "flag": flag, "n_train_per_class": None,
                 "n_val_per_class": None},
        "model": {"backbone": backbone}, "train": t,
        "scaling": scaling or {}}).model_dump()


def load_state(ckpt_dir) -> dict:
    return torch.load(Path(ckpt_dir) / "state.pt", map_location="cpu", weights_only=True)
