"""What a trial runs: the trainable registry and the wrapper every sweep trial goes through.

THE SEAM for the training core: a trainable is any ``fn(config: dict) -> None`` that runs one
trial inside a Ray Tune function trainable, reports each epoch with
``ray.tune.report(metrics, checkpoint=...)`` and resumes from ``ray.tune.get_checkpoint()``.
``config`` is the validated experiment config (``model_dump()``) with the sampled
hyperparameters written in at their dotted paths (``train.lr`` -> ``config["train"]["lr"]``).

``TRAINABLES`` names them:

* ``"launcher"`` (default): ``medxfer.train.launcher.run_trial``, the configured method;
* ``"toy"``: :func:`toy_trial`, a real tiny torch training loop on synthetic tensors that
  follows the same contract, for testing the sweep plumbing (retries, resume, concurrency)
  without the cost of data loading; its options are the config's top-level ``toy`` key.

Reported metrics: ``train_loss``, ``val_loss``, ``val_auc``, ``test_auc`` and ``epoch`` (the
1-based epoch, used as the MLflow step) each epoch; the wrapper adds ``system/*`` telemetry and
``system/node_id`` (:data:`NODE_ID_RESULT`, a string: the Ray node id of the trial's process),
which the driver's MLflow callback turns into the child run's tag ``medxfer.node_id`` — on a
cluster it says which node ran each trial (``node_ip``/``hostname`` cannot tell nodes on one
machine apart).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from medxfer.tune.experiment import set_path

log = logging.getLogger(__name__)

Trainable = Callable[[dict], None]

NODE_ID_RESULT = "system/node_id"  # result key: Ray node id (hex) of the trial's process


def current_node_id() -> str | None:
    """The Ray node id of this process, or None outside a Ray worker / on error."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - telemetry must never fail a trial
        return None


def _launcher() -> Trainable:
    from medxfer.train.launcher import run_trial

    return run_trial


def _toy() -> Trainable:
    return toy_trial


TRAINABLES: dict[str, Callable[[], Trainable]] = {
    "launcher": _launcher,
    "toy": _toy,
}


def resolve_trainable(name: str | None = None) -> tuple[str, Trainable]:
    """``name`` -> (name, fn); ``None`` is the launcher (the configured method)."""
    if name is None:
        return "launcher", _launcher()
    if name not in TRAINABLES:
        raise ValueError(f"trainable {name!r}: expected one of {', '.join(TRAINABLES)}")
    return name, TRAINABLES[name]()


def merge_sampled(base: dict, sampled: dict) -> dict:
    """The experiment config with the sampled values written at their dotted paths."""
    cfg = copy.deepcopy(base)
    for key, value in sampled.items():
        set_path(cfg, key, value)
    return cfg


def make_trial_fn(trainable_name: str | None, base_config: dict, telemetry_interval: float = 1.0):
    """The Tune function trainable of a sweep: merge the sampled config, sample telemetry in
    this (the trial's) process, run the trainable. Every report also carries
    :data:`NODE_ID_RESULT` (the node of this process; for a ``TorchTrainer`` trial that is the
    0-CPU trial driver's node, its workers may run elsewhere). Picklable; resolves the trainable
    inside the trial process so restored sweeps pick up the current code."""

    def medxfer_trial(config: dict) -> None:
        from medxfer.tune.telemetry import attach

        from medxfer.tune.experiment import SWEEP_ONLY_KEYS

        name, fn = resolve_trainable(trainable_name)
        full = merge_sampled(base_config, config)
        if name != "toy":  # the sweep's own keys are no part of the experiment config
            full = {k: v for k, v in full.items() if k not in SWEEP_ONLY_KEYS}
        node = current_node_id()
        with attach(interval=telemetry_interval, extra={NODE_ID_RESULT: node} if node else None):
            fn(full)

    return medxfer_trial


# --------------------------------------------------------------------------- toy trainable


def _auc(y, score) -> float:
    """Binary ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged (no sklearn import
    in every trial process)."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def toy_trial(config: dict) -> None:
    """A real, tiny torch training loop on synthetic tensors, with the launcher's contract.

    Reads ``train.{epochs, lr, weight_decay, momentum, batch_size, optimizer, lambda_lr}`` and,
    for tests, ``toy``: ``fail_at_epoch`` + ``fail_marker`` (raise once, on the first attempt
    to run that epoch: the marker file is written before raising so the retry succeeds),
    ``epoch_seconds`` (sleep per epoch), ``n`` (samples), ``log`` (a file that gets one JSON
    line per attempt: trial start epoch). Reports ``start_epoch`` (the epoch this attempt began
    at) so tests can see where a retry resumed.
    """
    import numpy as np
    import torch
    from ray import tune

    tr = config.get("train") or {}
    toy = config.get("toy") or {}
    epochs = int(tr.get("epochs", 3))
    lr = float(tr.get("lr", 1e-2))
    wd = float(tr.get("weight_decay", 0.0) or 0.0)
    momentum = float(tr.get("momentum", 0.0) or 0.0)
    bs = int(tr.get("batch_size", 32))
    opt_name = str(tr.get("optimizer", "sgd")).lower()
    lam = tr.get("lambda_lr")

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    n, d = int(toy.get("n", 384)), 16
    x = torch.randn(n, d, generator=g)
    w_true = torch.randn(d, generator=g)
    y = ((x @ w_true + 0.5 * torch.randn(n, generator=g)) > 0).float()
    n_tr, n_va = n // 2, n // 4
    splits = {"train": (x[:n_tr], y[:n_tr]), "val": (x[n_tr:n_tr + n_va], y[n_tr:n_tr + n_va]),
              "test": (x[n_tr + n_va:], y[n_tr + n_va:])}

    model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd, momentum=momentum)
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda e: float(lam) ** e)
             if lam is not None else None)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d_:
            state = torch.load(Path(d_) / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if sched is not None and state.get("sched"):
            sched.load_state_dict(state["sched"])
        start = int(state["epoch"])
    if toy.get("log"):
        with open(toy["log"], "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "start_epoch": start,
                                "trial_id": tune.get_context().get_trial_id()}) + "\n")

    def evaluate(split: str) -> tuple[float, float]:
        xs, ys = splits[split]
        with torch.no_grad():
            logits = model(xs).squeeze(1)
            loss = float(loss_fn(logits, ys))
        probs = torch.sigmoid(logits).numpy()
        if not np.all(np.isfinite(probs)):
            return loss, 0.5
        return loss, _auc(ys.numpy(), probs)

    for epoch in range(start + 1, epochs + 1):
        if toy.get("fail_at_epoch") == epoch and toy.get("fail_marker"):
            marker = Path(toy["fail_marker"])
            if not marker.exists():
                marker.write_text(str(epoch))
                raise RuntimeError(f"toy trainable: planned failure at epoch {epoch}")
        model.train()
        perm = torch.randperm(n_tr, generator=torch.Generator().manual_seed(epoch))
        total = 0.0
        for i in range(0, n_tr, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(splits["train"][0][idx]).squeeze(1), splits["train"][1][idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if sched is not None:
            sched.step()
        model.eval()
        val_loss, val_auc = evaluate("val")
        _, test_auc = evaluate("test")
        if toy.get("epoch_seconds"):
            time.sleep(float(toy["epoch_seconds"]))
        metrics = {"epoch": epoch, "start_epoch": start, "train_loss": total / n_tr,
                   "val_loss": val_loss if np.isfinite(val_loss) else 1e9,
                   "val_auc": val_auc, "test_auc": test_auc}
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict() if sched is not None else None,
                        "epoch": epoch}, Path(tmp) / "state.pt")
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
