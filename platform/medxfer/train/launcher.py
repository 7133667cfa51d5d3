"""The launcher: run a method's loop on the fast path or through Ray Train's ``TorchTrainer``.

Which path (``RAY-MLFLOW-NOTES.md``: a ``TorchTrainer`` costs ~30 s and ~8 processes here):

* one CPU worker (``scaling.num_workers == 1`` and not ``use_gpu``): the loop runs directly in
  the calling process (the *fast path*: laptops, tests, the demo, single-worker sweep trials);
* ``scaling.num_workers > 1`` or ``use_gpu``: a ``TorchTrainer`` (gloo on CPU, nccl on GPU)
  runs the same loop on every worker.

Entry points
------------
``run_trial(config: dict) -> None`` -- **the contract with the sweep code** (``medxfer.tune``).
Call it from inside a Ray Tune *function trainable*. ``config`` is the validated experiment
config, ``ExperimentConfig.model_dump()`` (paths and tracking URI already absolute), with the
sampled hyperparameters merged in as nested values: common ones under ``train.*`` (``lr``,
``weight_decay``, ``momentum``, ``batch_size``, ``lambda_lr``, ``epochs``, ...), a method's own
under ``method_config.*`` (use :func:`medxfer.config.deep_merge` or ``set_path``). It is
re-validated here, so a bad sample fails the trial with the YAML path in the message.

* Fast path: the loop reports through ``ray.tune.report`` every epoch with a checkpoint and
  resumes from ``ray.tune.get_checkpoint()`` (so ``FailureConfig(max_failures=...)`` and
  ``Tuner.restore`` resume mid-trial).
* Multi-worker path: builds a ``TorchTrainer`` with ``callbacks=[TuneReportCallback()]`` (each
  epoch's rank-0 metrics reach Tune, with ``checkpoint_path``) and
  ``RunConfig(name="train-<trial_id>", storage_path=<absolute>)``. The name is stable across
  restores, so a restored trial's ``TorchTrainer`` resumes from its own latest checkpoint. The
  Tune function trainable itself must take **0 CPUs** (the notes: request e.g.
  ``tune.with_resources(fn, {"CPU": 0, "trial_slot": 1})`` on a runtime started with
  ``resources={"trial_slot": N}``), or the workers never get scheduled.

Each reported dict has ``epoch`` (1-based, equal to Tune's ``training_iteration`` for a fresh
trial); the last one is the selected model (DESIGN.md) and carries ``selected_epoch`` and
``test_*``.

``run_local(config, storage_dir=...)`` -- the fast path in-process without Ray (``medxfer
train``, tests); returns the :class:`~medxfer.methods.session.LocalSession` (history,
checkpoints). ``fit_trainer(config, name=..., storage_path=...)`` -- a ``TorchTrainer`` run
outside Tune (``medxfer train`` with several workers); returns Ray's ``Result``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medxfer.config import ExperimentConfig
from medxfer.methods import LocalSession, get_method, parse_experiment, use_session

TRAIN_RUN_PREFIX = "train-"


def _validated(config: Mapping[str, Any] | ExperimentConfig) -> ExperimentConfig:
    return config if isinstance(config, ExperimentConfig) else parse_experiment(config)


def _device(cfg: ExperimentConfig) -> str:
    import torch

    return "cuda" if cfg.scaling.use_gpu and torch.cuda.is_available() else "cpu"


def run_local(config: Mapping[str, Any] | ExperimentConfig, *, storage_dir: str | os.PathLike,
              resume_from: str | os.PathLike | None = None,
              on_report: Callable[[dict, str | None], None] | None = None,
              keep: int | None = None) -> LocalSession:
    """Run the method's loop in this process (no Ray); see the module docstring."""
    cfg = _validated(config)
    session = LocalSession(storage_dir, resume_from=resume_from, on_report=on_report,
                           device=_device(cfg), keep=keep)
    with use_session(session):
        get_method(cfg.method).train_loop_per_worker(cfg.model_dump())
    return session


def _worker_loop(config: dict[str, Any]) -> None:
    """``train_loop_per_worker`` of every ``TorchTrainer``: bind Ray Train, run the method."""
    from medxfer.train.sessions import RayTrainSession

    with use_session(RayTrainSession()):
        get_method(config["method"]).train_loop_per_worker(config)


def _worker_env() -> dict[str, Any] | None:
    """Make workers import *this* medxfer (a checkout on PYTHONPATH, maybe relative) rather
    than whatever the interpreter would find from the worker's working directory."""
    import medxfer

    src = str(Path(medxfer.__file__).resolve().parents[1])
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if parts and parts[0] == src:
        return None
    return {"env_vars": {"PYTHONPATH": os.pathsep.join([src] + [str(Path(p).resolve())
                                                                for p in parts])}}


def build_trainer(config: Mapping[str, Any] | ExperimentConfig, *, name: str,
                  storage_path: str | os.PathLike, callbacks: Sequence[Any] = (),
                  max_failures: int = 0):
    """A ``TorchTrainer`` running the method on ``scaling.num_workers`` workers.

    Args:
        config: the experiment (validated here).
        name: ``RunConfig.name``; the same name and storage resume the run's latest checkpoint.
        storage_path: absolute directory where the run persists checkpoints.
        callbacks: ``ray.train.UserCallback`` instances (run in the Train controller).
        max_failures: worker-group restarts (each resumes from the latest checkpoint).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cfg = _validated(config)
    s = cfg.scaling
    resources = dict(s.resources_per_worker) if s.resources_per_worker else None
    return TorchTrainer(
        _worker_loop,
        train_loop_config=cfg.model_dump(),
        torch_config=TorchConfig(backend="nccl" if s.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(
            name=name, storage_path=str(Path(storage_path).resolve()),
            callbacks=list(callbacks), failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            worker_runtime_env=_worker_env()),
    )


def fit_trainer(config: Mapping[str, Any] | ExperimentConfig, *, name: str,
                storage_path: str | os.PathLike, callbacks: Sequence[Any] = (),
                max_failures: int = 0):
    """Build and fit :func:`build_trainer`; returns Ray's ``Result`` (needs a Ray runtime:
    ``ray.init`` is called with defaults when none is running)."""
    return build_trainer(config, name=name, storage_path=storage_path, callbacks=callbacks,
                         max_failures=max_failures).fit()


def _trial_storage(cfg: ExperimentConfig) -> str:
    if cfg.scaling.storage_path:
        return cfg.scaling.storage_path
    from ray import tune

    # <storage>/<experiment>/<trial>: keep the TorchTrainer runs beside the trials.
    return str(Path(tune.get_context().get_trial_dir()).resolve().parent / "_train")


def run_trial(config: Mapping[str, Any]) -> None:
    """Run one Tune trial of the configured method; see the module docstring (the contract)."""
    cfg = _validated(config)
    if not cfg.scaling.distributed:
        from medxfer.train.sessions import TuneSession

        with use_session(TuneSession(device=_device(cfg))):
            get_method(cfg.method).train_loop_per_worker(cfg.model_dump())
        return
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    name = TRAIN_RUN_PREFIX + tune.get_context().get_trial_id()
    fit_trainer(cfg, name=name, storage_path=_trial_storage(cfg),
                callbacks=[TuneReportCallback()])
