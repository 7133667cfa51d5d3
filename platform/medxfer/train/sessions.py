"""Bindings of :class:`medxfer.methods.session.Session` to Ray Train (V2) and Ray Tune.

* :class:`RayTrainSession`: inside a ``TorchTrainer`` worker. Every rank calls
  ``ray.train.report`` (it is a barrier); only rank 0 passes a checkpoint; resume from
  ``ray.train.get_checkpoint()``; ``prepare_model`` / ``prepare_data_loader`` from
  ``ray.train.torch``.
* :class:`TuneSession`: inside a Ray Tune function trainable without a ``TorchTrainer`` (the
  fast path of a sweep). ``ray.train.report`` refuses to run there (Ray 2.60 raises in a Tune
  session), so this uses ``ray.tune.report`` / ``ray.tune.get_checkpoint``.

Both add the reporting process's hardware telemetry and Ray node id
(:class:`medxfer.train.telemetry.Telemetry`, ``system/*``) to every report; through a
``TorchTrainer``, rank 0's reach Tune.
"""

from __future__ import annotations

import torch
from torch import nn

from medxfer.methods.session import SingleProcess, unwrap
from medxfer.train.telemetry import Telemetry


def _as_directory(checkpoint) -> str | None:
    """A local directory for a Ray checkpoint (downloaded when storage is remote)."""
    if checkpoint is None:
        return None
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return checkpoint.to_directory()


class RayTrainSession:
    """Session of a Ray Train V2 worker (see the module docstring)."""

    def __init__(self):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.world_rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self.telemetry = Telemetry()

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        import ray.train

        ckpt = None
        if checkpoint_dir is not None and self.world_rank == 0:
            ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir)
        ray.train.report({**metrics, **self.telemetry.metrics()}, checkpoint=ckpt)

    def get_checkpoint(self) -> str | None:
        import ray.train

        return _as_directory(ray.train.get_checkpoint())

    def prepare_model(self, model: nn.Module) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def prepare_loader(self, loader, *, shard: bool = True):
        import ray.train.torch

        return ray.train.torch.prepare_data_loader(loader, add_dist_sampler=shard)

    def all_reduce_mean(self, value: float) -> float:
        if self.world_size == 1:
            return float(value)
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world_size

    def sync_buffers(self, model: nn.Module) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for b in unwrap(model).buffers():
            dist.broadcast(b.data, src=0)


class TuneSession(SingleProcess):
    """Session of a Ray Tune function trainable running the loop in-process (one worker)."""

    world_rank = 0
    world_size = 1

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device or "cpu")
        self.telemetry = Telemetry()

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **self.telemetry.metrics()}, checkpoint=ckpt)

    def get_checkpoint(self) -> str | None:
        from ray import tune

        return _as_directory(tune.get_checkpoint())

