"""finetune: supervised transfer of a (pre-trained) backbone to a target dataset.

Protocol (seed ``004_43f54b618356cecf.txt`` sec. 6.4.2, "Benchmarking transfer performance"):
full fine-tuning with SGD (momentum, weight decay), early stopping when the validation AUC has not
improved for ``patience`` (thesis: 50) epochs, and the *selected* model is the epoch with the
lowest validation loss; its test AUC is the ground truth. Seed ``000_3dd3de5c534b555f.txt``
App. B adds Adam and LambdaLR with a multiplicative factor ``lambda_lr`` per epoch; seed
``002_d7fb762c9e967338.txt`` the linear-probing setting (``freeze_backbone``: only the classifier
trains; the backbone, BatchNorm statistics included, stays as loaded).

Multi-class/binary targets use cross-entropy, multi-label targets (ChestMNIST, ``synthchest``)
BCE-with-logits. It trains on the labelled training images of its data (a study's label
fraction or count, else the whole training split). Reports per epoch (step = epoch, 1-based):
``train_loss, val_loss, val_auc, val_acc, val_f1_micro, val_f1_macro, val_map, lr``; then one
final step (``epochs run + 1``) with the selected epoch's val metrics and the ``test_*`` (and
``<set>_test_*`` for a study's OOD sets) metrics of its weights, plus
``selected_epoch`` (DESIGN.md: the last step is the selected model). The final checkpoint holds
``model.pt``, the selected weights (keys ``backbone.*``/``head.*``; loadable by
``create_backbone(..., weights=...)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxfer.methods.checkpoint import clone_state
from medxfer.methods.common import classify_loss, evaluate, in_chans, load_datasets
from medxfer.methods.loop import Parts, train_loop
from medxfer.methods.registry import Method, MethodOptions, register_method
from medxfer.methods.session import get_session, to_device, unwrap


class FinetuneOptions(MethodOptions):
    """``method_config`` of finetune.

    Attributes:
        freeze_backbone: linear probing (seed 002): only the classifier head trains.
    """

    freeze_backbone: bool = False


DEFAULTS: dict[str, Any] = {"train": {"early_stopping_metric": "val_auc",
                                      "early_stopping_mode": "max",
                                      "select_by": "val_loss", "mode": "min"}}


def train_epoch(model: nn.Module, loader, opt: torch.optim.Optimizer, loss_fn, device,
                frozen: bool) -> float:
    """One pass over ``loader``; returns the mean training loss of this rank."""
    model.train()
    if frozen:  # linear probe: the backbone's BatchNorm statistics stay as loaded
        unwrap(model).backbone.eval()
    total, n = torch.zeros((), device=device), 0
    for x, y in loader:
        x, y = to_device(x, device), to_device(y, device)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(x)
        n += len(x)
    return float(total) / max(n, 1)


def build_parts(cfg, opts: FinetuneOptions) -> Parts:
    """The classifier (``model.backbone`` + a linear head), its CE/BCE epoch step on the
    labelled training images, and the test sets (the source's test part, ``test_*``, and any
    OOD set's, ``<set>_test_*``) scored in the final step."""
    from medxfer.models import create_backbone

    device = get_session().device
    data = load_datasets(cfg)
    info = data.info
    model = create_backbone(cfg.model.backbone, in_chans=in_chans(cfg, data["train"]),
                            weights=cfg.model.weights, num_classes=info.n_classes)
    if opts.freeze_backbone:
        model.backbone.requires_grad_(False)
    loss_fn = classify_loss(info.multilabel)

    def run_epoch(net: nn.Module, loader, opt) -> dict[str, float]:
        if opt is None:
            return evaluate(net, loader, device, info.task, loss_fn, "")
        return {"loss": train_epoch(net, loader, opt, loss_fn, device, opts.freeze_backbone)}

    return Parts(model=model, run_epoch=run_epoch, train_set=data.labelled,
                 val_set=data.val, test_sets=data.test_sets, data_params=data.params,
                 artifacts=lambda selected: {"model.pt": clone_state(selected)})


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Fine-tune ``model.backbone`` on ``data.flag``; see the module docstring."""
    train_loop(config, build_parts)


METHOD = register_method(Method(
    name="finetune", train_loop_per_worker=train_loop_per_worker, config_schema=FinetuneOptions,
    defaults=DEFAULTS,
    description="supervised transfer: full fine-tuning or linear probing (CE / BCE)"))
