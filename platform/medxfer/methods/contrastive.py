"""The self-supervised family (simclr, supcon, cltci, moco, swav, rotation, pirl, mae): views
of each image, a loss, the probe.

A method supplies a :class:`ContrastiveParts` (the network, other modules to checkpoint, and a
``loss(net, batch, train)`` function); :func:`run` turns it into the training loop's
:class:`~medxfer.methods.loop.Parts`, identically for all of them:

* data: the run's train/val datasets (:func:`medxfer.methods.common.load_datasets`: any
  source, a study cell's selection), each item the views of one image (default two,
  :class:`medxfer.data.transforms.TwoViews` of ``data.transforms``, default: the seed 000
  App. B crop 0.6-1.0 + rotation up to 15 degrees + a horizontal flip; a method may ask for one
  view, a jigsaw, multi-crop, ...), its label and its patient id
  (:class:`medxfer.methods.common.WithPatients`). Pretraining uses every training image,
  unlabelled; a method that needs labels (``labelled_only``: supcon) only the labelled ones;
  a method may bring its own loader (patient-grouped batches) and optimizer (LARS);
* per epoch (:mod:`medxfer.methods.loop`, step = epoch): ``train_loss``, ``val_loss`` (the same
  loss on augmented val views, no update), ``lr``; a checkpoint every epoch; early stopping and
  selection as configured (defaults: ``val_loss``, min);
* final step: the selected epoch's ``train_loss``/``val_loss``, ``selected_epoch``, and, with
  ``probe_epochs > 0``, a linear probe on the frozen selected encoder (:mod:`.probe`) trained
  on the labelled images: ``val_auc, val_acc, ..., test_auc, ...`` (and ``<set>_test_*`` for
  a study's OOD sets), ``probe_val_loss``, ``probe_test_loss``. The final
  checkpoint holds ``encoder.pt``: the encoder without the projection head (seed 000 sec. 3.2:
  "the transformation head is discarded"), a plain state dict that ``finetune`` loads through
  ``model.weights``.

Under several workers each rank contrasts within its own shard of the batch (no all-gather of
negatives) and a MoCo queue is per rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from pydantic import Field
from torch import nn

from medxfer.config import ExperimentConfig
from medxfer.methods.checkpoint import clone_state
from medxfer.methods.common import WithPatients, in_chans
from medxfer.methods.loop import Parts, train_loop
from medxfer.methods.registry import MethodOptions
from medxfer.methods.session import get_session, to_device

#: Experiment defaults of every contrastive method (seed 003 sec. IV: SGD, cosine schedule).
DEFAULTS: dict[str, Any] = {"train": {"optimizer": "sgd", "lr": 0.1, "scheduler": "cosine",
                                      "early_stopping_metric": "val_loss",
                                      "early_stopping_mode": "min",
                                      "select_by": "val_loss", "mode": "min"}}


class ContrastiveOptions(MethodOptions):
    """Options shared by the contrastive methods.

    Attributes:
        temperature: tau of the contrastive loss.
        proj_hidden_dim, proj_out_dim, proj_layers: the MLP projection head (SimCLR: 2 layers,
            output 128).
        probe_epochs: linear-probe epochs after pretraining (0: no probe).
        probe_lr: the probe's Adam learning rate.
    """

    temperature: float = Field(0.1, gt=0)
    proj_hidden_dim: int = Field(512, ge=1)
    proj_out_dim: int = Field(128, ge=1)
    proj_layers: int = Field(2, ge=1)
    probe_epochs: int = Field(0, ge=0)
    probe_lr: float = Field(1e-2, gt=0)


class SSLNet(nn.Module):
    """Encoder + projection head: (B, C, H, W) -> z (B, proj_out_dim)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@dataclass
class ContrastiveParts:
    """What a contrastive method plugs into :func:`run`.

    Attributes:
        net: the online network (trained, wrapped in DDP on several workers); ``net.encoder``
            is the encoder saved as ``encoder.pt`` and probed.
        loss: ``loss(net, batch, train) -> scalar``; ``batch = (views, y, extra)`` on the
            device (``views`` what ``views`` made of one image, ``extra`` the patient ids);
            ``train=False`` must not change any state (val).
        extra: other modules to checkpoint (momentum encoder, queue), moved to the device.
        views: turns the per-image pipeline (``data.transforms``, default
            :func:`default_transforms`) into an item's views (default: two, ``TwoViews``).
        train_set, val_set: replace the target's view splits (e.g. swav's per-modality
            groups); their items must be ``(views, y, ...)`` with ``len(y)`` the batch size.
        batch_size: loader batch size for ``train_set``/``val_set`` (default
            ``train.batch_size``).
        on_epoch: called with the 1-based epoch before it trains (schedules inside a method).
        before_step, after_step: called with the network around each ``optimizer.step()``
            (freeze a part's gradients; renormalise prototypes; per-iteration learning rate).
        train_loader: ``train_loader(train_set, session, batch_size)`` builds the training
            loader (e.g. patient-grouped batches), see :class:`~medxfer.methods.loop.Parts`.
        optimizer: replaces ``train.optimizer`` (e.g. LARS).
        labelled_only: pretrain on the labelled training images only (a loss that reads
            labels, under a study's label fraction).
    """

    net: nn.Module
    loss: Callable[[nn.Module, Any, bool], torch.Tensor]
    extra: dict[str, nn.Module] = field(default_factory=dict)
    views: Callable[[Callable], Callable] | None = None
    train_set: Any = None
    val_set: Any = None
    batch_size: int | None = None
    on_epoch: Callable[[int], None] | None = None
    before_step: Callable[[nn.Module], None] | None = None
    after_step: Callable[[nn.Module], None] | None = None
    train_loader: Callable[[Any, Any, int], Any] | None = None
    optimizer: torch.optim.Optimizer | None = None
    labelled_only: bool = False


def default_transforms(size: int) -> list[dict]:
    """Seed ``000_3dd3de5c534b555f.txt`` App. B augmentations at ``size`` (+ horizontal flip)."""
    return [{"name": "random_resized_crop", "size": size, "scale": [0.6, 1.0]},
            {"name": "random_rotation", "degrees": 15},
            {"name": "random_horizontal_flip", "p": 0.5}]


def build_net(cfg: ExperimentConfig, opts: ContrastiveOptions, chans: int) -> SSLNet:
    """Backbone (``model.*``, local weights only) + :class:`~medxfer.models.ProjectionHead`."""
    from medxfer.models import ProjectionHead, create_backbone

    encoder = create_backbone(cfg.model.backbone, in_chans=chans, weights=cfg.model.weights)
    head = ProjectionHead(encoder.embed_dim, opts.proj_hidden_dim, opts.proj_out_dim,
                          num_layers=opts.proj_layers)
    return SSLNet(encoder, head)


def momentum_keys(net: nn.Module, key_net: nn.Module, view: torch.Tensor, momentum: float,
                  train: bool) -> torch.Tensor:
    """MoCo's keys (He et al. 2020, https://arxiv.org/abs/1911.05722 eq. 2): on a training
    step the key encoder first moves towards the query encoder (``theta_k <- m theta_k +
    (1 - m) theta_q``), then embeds ``view``; no gradient reaches either. ``(B, D)``."""
    from medxfer.losses import momentum_update
    from medxfer.methods.session import unwrap

    with torch.no_grad():
        if train:
            momentum_update(unwrap(net), key_net, momentum)
        return key_net(view)


def pipeline(cfg: ExperimentConfig, default: list[dict] | None = None) -> Callable:
    """The per-image training pipeline: ``data.transforms``, else ``default``, else
    :func:`default_transforms`."""
    from medxfer.data import build_transform

    return build_transform(cfg.data.transforms or default or default_transforms(cfg.data.size))


def view_data(cfg: ExperimentConfig, item_transform: Callable | None,
              flag: str | None = None):
    """The run's datasets (:func:`~medxfer.methods.common.load_datasets`: any source, a study
    cell's selection), every image passed through ``item_transform`` (None:
    ``data.eval_transforms``); with ``flag``, that ``.npz`` flag under ``data.root`` on its own
    splits instead (another modality). A :class:`~medxfer.methods.common.MethodData`."""
    from medxfer.data import build_transform
    from medxfer.methods.common import load_datasets

    d = cfg.data
    if item_transform is None and d.eval_transforms:
        item_transform = build_transform(d.eval_transforms)
    data = d.model_copy(update={"transforms": None, "eval_transforms": None})
    if flag is not None and flag != d.flag:
        data = data.model_copy(update={"flag": flag})
        cfg = cfg.model_copy(update={"protocol": None, "cell": None})
    return load_datasets(cfg, data=data, train_transform=item_transform,
                         eval_transform=item_transform)


def view_splits(cfg: ExperimentConfig, item_transform: Callable | None,
                flag: str | None = None) -> dict:
    """:func:`view_data` as ``{"train", "val", "labelled"}``, items ``(x, y, patient)``."""
    data = view_data(cfg, item_transform, flag)
    return {k: WithPatients(data[k]) for k in ("train", "val", "labelled")}


def _epoch(parts: ContrastiveParts, net: nn.Module, loader, opt, device) -> dict[str, float]:
    """One pass of the contrastive loss: training with ``opt``, else evaluation."""
    train = opt is not None
    net.train(train)
    for m in parts.extra.values():
        m.train(train)
    total, n = torch.zeros((), device=device), 0
    with torch.set_grad_enabled(train):
        for batch in loader:
            batch = to_device(batch, device)
            loss = parts.loss(net, batch, train)
            if train:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if parts.before_step is not None:
                    parts.before_step(net)
                opt.step()
                if parts.after_step is not None:
                    parts.after_step(net)
            total += loss.detach() * len(batch[1])
            n += len(batch[1])
    return {"loss": float(total) / max(n, 1)}


def _probe(opts, plain, batch_size: int, seed: int,
           device) -> Callable[[nn.Module], dict[str, float]] | None:
    """The final step's linear probe on the selected encoder (None without ``probe_epochs``):
    trained on the labelled images, scored on val and every test set."""
    if getattr(opts, "probe_epochs", 0) <= 0:
        return None
    info = plain.info
    sets = {"train": WithPatients(plain.labelled), "val": WithPatients(plain.val),
            **{k: WithPatients(v) for k, v in plain.test_sets.items()}}

    def final_metrics(selected: nn.Module) -> dict[str, float]:
        from medxfer.methods.probe import linear_probe

        probe = linear_probe(selected.encoder, sets, task=info.task, n_classes=info.n_classes,
                             multilabel=info.multilabel, epochs=opts.probe_epochs,
                             lr=opts.probe_lr, batch_size=batch_size, seed=seed, device=device)
        probe["probe_val_loss"] = probe.pop("val_loss")
        if "test_loss" in probe:
            probe["probe_test_loss"] = probe.pop("test_loss")
        return probe

    return final_metrics


def run(config: dict[str, Any],
        build_parts: Callable[[ExperimentConfig, Any, int], ContrastiveParts]) -> None:
    """The contrastive method's loop (module docstring); ``build_parts(cfg, options,
    in_chans)``."""

    def build(cfg: ExperimentConfig, opts) -> Parts:
        from medxfer.data import TwoViews

        device = get_session().device
        plain = view_data(cfg, None)
        c = build_parts(cfg, opts, in_chans(cfg, plain.train))
        if c.train_set is None or c.val_set is None:
            views = view_data(cfg, (c.views or TwoViews)(pipeline(cfg)))
            pretrain = views.labelled if c.labelled_only else views.train
        train_set = WithPatients(pretrain) if c.train_set is None else c.train_set
        loader = None if c.train_loader is None else \
            (lambda session, bs: c.train_loader(train_set, session, bs))
        return Parts(
            model=c.net, name="net", extra=c.extra, train_set=train_set,
            val_set=WithPatients(views.val) if c.val_set is None else c.val_set,
            batch_size=c.batch_size, drop_last=True, on_epoch=c.on_epoch,
            train_loader=loader, optimizer=c.optimizer,
            run_epoch=lambda net, loader, opt: _epoch(c, net, loader, opt, device),
            final_metrics=_probe(opts, plain, cfg.train.batch_size, cfg.train.seed, device),
            data_params=plain.params,
            artifacts=lambda selected: {"encoder.pt": clone_state(selected.encoder)})

    train_loop(config, build)
