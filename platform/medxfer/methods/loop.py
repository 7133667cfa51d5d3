"""The one training loop every method runs: restore, epochs, early stopping, model selection,
checkpoints and the final report.

A method supplies its :class:`Parts` (the model, its datasets, one epoch step and its final
artifacts, in lightly's spirit: the method is the parts, the loop is shared); :func:`fit` does
the rest identically for all of them:

* restore from the session's checkpoint (weights, optimizer, scheduler, RNG states, progress);
  a run whose final step was reported does nothing;
* per epoch (step = epoch, 1-based): ``run_epoch`` over the training split (its metrics
  averaged over workers, prefixed ``train_``), BatchNorm buffers synchronised, ``run_epoch``
  over the validation split without updates (prefixed ``val_``), the scheduler stepped; the
  report holds ``epoch``, ``lr`` and those metrics, with a checkpoint, and the data the run
  used: ``n_train``, ``n_val`` (images of the two splits) and the method's ``data_params``
  (:data:`medxfer.config.REPORT_PARAMS`: run params, not metrics);
* early stopping after ``train.patience`` epochs without improvement of
  ``train.early_stopping_metric`` and selection of the epoch with the best ``train.select_by``
  (seed ``004_43f54b618356cecf.txt`` sec. 6.4.2: stop on validation AUC, select by the lowest
  validation loss);
* the final step (``epochs run + 1``, DESIGN.md: "the last step is the selected model"): the
  selected epoch's metrics, the selected weights scored on each of ``test_sets`` (prefixed by
  the set's name), the method's ``final_metrics`` (e.g. a linear probe) and ``selected_epoch``;
  its checkpoint adds the method's ``artifacts`` (``model.pt``, ``encoder.pt``, ``dce.pt``).

No Ray or MLflow here: everything goes through :class:`~medxfer.methods.session.Session`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import torch
from pydantic import BaseModel
from torch import nn
from torch.utils.data import Dataset

from medxfer.config import ExperimentConfig, TrainConfig
from medxfer.errors import MedxferInputError
from medxfer.methods import checkpoint
from medxfer.methods.common import (build_optimizer, build_scheduler, make_loader,
                                    seed_everything, start_epoch)
from medxfer.methods.experiment import method_options, parse_experiment
from medxfer.methods.session import Session, get_session, unwrap

#: ``run_epoch(model, loader, optimizer) -> {name: mean value}``: one pass over ``loader``. With
#: an optimizer it trains; with None it evaluates and must not change any state (no update, no
#: queue push).
EpochStep = Callable[[nn.Module, Iterable, "torch.optim.Optimizer | None"], dict[str, float]]


@dataclass
class Parts:
    """What a method plugs into :func:`fit`.

    Attributes:
        model: the trained module (wrapped in DistributedDataParallel on several workers); its
            weights at the selected epoch are kept and loaded back for the final step.
        run_epoch: the method's epoch step (:data:`EpochStep`), for training and validation.
        train_set, val_set: the splits the loop batches (seeded shuffling per epoch for train).
        artifacts: ``artifacts(selected_model) -> {file name: payload}`` written beside the
            final checkpoint (``torch.save``), e.g. ``{"model.pt": state_dict}``.
        name: the model's key in checkpoints (``state.pt`` ``modules``/``best_modules``).
        extra: other modules to checkpoint (momentum encoder, queue); moved to the device,
            not selected.
        test_sets: ``{name: dataset}`` the selected model is scored on by ``run_epoch`` in the
            final step (metrics prefixed ``<name>_``): the source's ``test`` and any number of
            other sources' (``<set>_test``, zero-shot).
        final_metrics: ``final_metrics(selected_model) -> metrics`` added to the final step.
        batch_size: loader batch size (default ``train.batch_size``).
        drop_last: drop the last incomplete training batch (BatchNorm needs > 1 sample), unless
            the split is smaller than one batch.
        on_epoch: called with the 1-based epoch before it trains (schedules inside a method).
        optimizer: default: ``train.optimizer`` over the model's trainable parameters.
        train_loader: ``train_loader(session, batch_size)`` builds the training loader instead
            of the default shuffled one (e.g. a patient-grouped batch sampler); it shards across
            ranks itself and is re-seeded per epoch by ``start_epoch`` (its DataLoader's
            generator or its sampler's ``set_epoch``).
        data_params: reported with every step beside ``n_train``/``n_val``
            (e.g. ``MethodData.params``: ``n_labelled``, ``selection_crc``).
    """

    model: nn.Module
    run_epoch: EpochStep
    train_set: Dataset
    val_set: Dataset
    artifacts: Callable[[nn.Module], dict[str, Any]]
    name: str = "model"
    extra: dict[str, nn.Module] = field(default_factory=dict)
    test_sets: dict[str, Dataset] = field(default_factory=dict)
    final_metrics: Callable[[nn.Module], dict[str, float]] | None = None
    batch_size: int | None = None
    drop_last: bool = False
    on_epoch: Callable[[int], None] | None = None
    optimizer: torch.optim.Optimizer | None = None
    train_loader: Callable[[Session, int], Iterable] | None = None
    data_params: dict[str, float] = field(default_factory=dict)


def _better(a: float | None, b: float | None, mode: str) -> bool:
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
        """Record epoch ``metrics["epoch"]``; return True if it is the new selected epoch.

        Raises:
            MedxferInputError: ``train.select_by`` is not among the reported metrics.
        """
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


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def fit(session: Session, t: TrainConfig, parts: Parts) -> None:
    """Train ``parts`` under ``t`` and report through ``session``; see the module docstring.

    Call it after seeding (:func:`~medxfer.methods.common.seed_everything`) and building the
    parts, so that a fresh run and a resumed one start from the same RNG stream.

    Args:
        session: where epochs and checkpoints are reported, and resumed from.
        t: epochs, optimiser, schedule, early stopping and selection.
        parts: the method's parts.

    Raises:
        MedxferInputError: ``train.select_by`` is not a reported metric.
    """
    opt = parts.optimizer if parts.optimizer is not None else build_optimizer(
        (p for p in parts.model.parameters() if p.requires_grad), t)
    sched = build_scheduler(opt, t)
    progress, best = Progress(), None
    if (resume := session.get_checkpoint()) is not None:
        state = checkpoint.restore(resume, modules={parts.name: parts.model, **parts.extra},
                                   optimizer=opt, scheduler=sched)
        progress, best = Progress(**state["progress"]), state["best_modules"]
    if progress.done:
        return
    for m in parts.extra.values():
        m.to(session.device)
    model = session.prepare_model(parts.model)
    bs = parts.batch_size or t.batch_size
    train = parts.train_loader(session, bs) if parts.train_loader is not None else \
        session.prepare_loader(make_loader(parts.train_set, t, shuffle=True, batch_size=bs,
                                           drop_last=parts.drop_last and len(parts.train_set) > bs))
    val = _eval_loader(session, parts.val_set, t, bs)
    data = {"n_train": float(len(parts.train_set)), "n_val": float(len(parts.val_set)),
            **parts.data_params}

    def report(metrics: dict[str, float], files: dict[str, Any] | None = None) -> None:
        checkpoint.report(session, metrics, modules={parts.name: model, **parts.extra},
                          optimizer=opt, scheduler=sched, progress=asdict(progress),
                          best_modules=best, extra_files=files)

    while not progress.should_stop(t):
        epoch = progress.epoch + 1
        start_epoch(train, epoch, t.seed)
        if parts.on_epoch is not None:
            parts.on_epoch(epoch)
        lr = opt.param_groups[0]["lr"]
        trained = {k: session.all_reduce_mean(v) for k, v in
                   parts.run_epoch(model, train, opt).items()}
        session.sync_buffers(model)  # every rank validates and selects the same model
        validated = parts.run_epoch(unwrap(model), val, None)
        sched.step()
        metrics = {"epoch": epoch, "lr": lr, **_prefixed(trained, "train_"),
                   **_prefixed(validated, "val_"), **data}
        if progress.update(metrics, t):
            best = {parts.name: checkpoint.clone_state(model)}
        report(metrics)

    selected = unwrap(model)
    selected.load_state_dict(best[parts.name])
    final = _final_metrics(session, t, parts, selected, progress, bs)
    progress.done = True
    report(final, parts.artifacts(selected))


def _eval_loader(session: Session, dataset: Dataset, t: TrainConfig, batch_size: int):
    """An unshuffled loader of the whole ``dataset`` on every rank (identical evaluations)."""
    return session.prepare_loader(make_loader(dataset, t, shuffle=False, batch_size=batch_size),
                                  shard=False)


def _final_metrics(session: Session, t: TrainConfig, parts: Parts, selected: nn.Module,
                   progress: Progress, batch_size: int) -> dict[str, float]:
    """The final step: the selected epoch's metrics, the selected model's scores on the test
    sets and the method's final metrics, ``epoch`` (epochs run + 1) and ``selected_epoch``."""
    final = {k: v for k, v in progress.best_metrics.items() if k != "epoch"}
    for name, dataset in parts.test_sets.items():
        loader = _eval_loader(session, dataset, t, batch_size)
        final.update(_prefixed(parts.run_epoch(selected, loader, None), f"{name}_"))
    if parts.final_metrics is not None:
        final.update(parts.final_metrics(selected))
    final.update(epoch=progress.epoch + 1, selected_epoch=progress.best_epoch)
    return final


def train_loop(config: dict[str, Any],
               build_parts: Callable[[ExperimentConfig, BaseModel], Parts]) -> None:
    """A method's ``train_loop_per_worker``: validate ``config``, seed, build the method's
    parts (``build_parts(cfg, method_options)``) and :func:`fit` them under the bound session."""
    cfg = parse_experiment(config)
    seed_everything(cfg.train.seed)
    parts = build_parts(cfg, method_options(cfg))
    fit(get_session(), cfg.train, parts)
