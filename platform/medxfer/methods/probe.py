"""Linear probe: a linear classifier on frozen encoder features (the evaluation part of the
contrastive methods).

Seed ``002_d7fb762c9e967338.txt``: after contrastive pretraining "a linear classifier (again only
the last layer) is trained on top of the frozen backbone using BCE loss" (CE for single-label
targets here). Features are extracted once (encoder in eval mode), then the classifier trains on
them for ``epochs`` with Adam; the probe epoch with the lowest validation loss is kept (thesis
seed 004 sec. 6.4.2 selection) and scored on val and test.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import DataLoader

from medxfer.methods.common import classify_loss
from medxfer.methods.session import to_device


@torch.no_grad()
def extract(encoder: nn.Module, dataset, device: torch.device,
            batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, d)`` and labels of ``dataset`` (items ``(x, y, ...)``), on CPU."""
    encoder.eval()
    feats, ys = [], []
    for x, y, *_ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        feats.append(encoder(to_device(x, device)).float().cpu())
        ys.append(y)
    return torch.cat(feats), torch.cat(ys)


def linear_probe(encoder: nn.Module, datasets: dict, *, task: str, n_classes: int,
                 multilabel: bool, epochs: int = 30, lr: float = 1e-2,
                 weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0,
                 device: torch.device | str = "cpu") -> dict[str, float]:
    """Train and score a linear probe; returns ``<set>_*`` metrics of every set but train.

    Args:
        encoder: frozen backbone, (B, C, H, W) -> (B, d).
        datasets: ``{"train", "val", ...}`` with untransformed (eval) images; every other key
            is a test set (``"test"``, or ``"<name>_test"`` for a study's OOD set).
        task, n_classes, multilabel: from the dataset's ``info``.

    Returns:
        ``val_loss, val_auc, ..., test_loss, test_auc, ...`` (one block per set) of the
        selected probe epoch and ``probe_epoch``.
    """
    from medxfer.evaluation.metrics import classification_metrics

    device = torch.device(device)
    data = {k: extract(encoder, ds, device) for k, ds in datasets.items()}
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(data["train"][0].shape[1], n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = classify_loss(multilabel)
    best, best_loss, best_epoch = copy.deepcopy(head.state_dict()), float("inf"), 0
    xtr, ytr = data["train"]
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(xtr), generator=g).split(batch_size):
            loss = loss_fn(head(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val_loss = float(loss_fn(head(data["val"][0]), data["val"][1]))
        if val_loss < best_loss:
            best, best_loss, best_epoch = copy.deepcopy(head.state_dict()), val_loss, epoch
    head.load_state_dict(best)
    out: dict[str, float] = {"probe_epoch": best_epoch}
    with torch.no_grad():
        for split in (k for k in data if k != "train"):
            x, y = data[split]
            logits = head(x)
            score = torch.sigmoid(logits) if multilabel else logits.softmax(1)
            out[f"{split}_loss"] = float(loss_fn(logits, y))
            out.update(classification_metrics(task, y.numpy(), score.numpy(),
                                              prefix=f"{split}_"))
    return out
