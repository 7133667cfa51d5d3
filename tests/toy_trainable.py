"""A test fixture trainable: a real, tiny torch training loop on synthetic tensors with the
launcher's contract (``fn(config)``: reads ``train.*``, reports every epoch with a checkpoint,
resumes from the last one), for testing the sweep plumbing (retries, resume, concurrency,
MLflow logging) without the cost of data loading and a CNN.

It reports through :class:`medxfer.train.sessions.TuneSession`, the session of the launcher's
fast path, so its reports carry the same ``system/*`` telemetry. It trains an MLP on Gaussian
data whatever ``method`` / ``model`` the config names: tests check the metrics it logged, never
that it ran the configured method.

Ray workers do not see pytest's ``pythonpath = ["tests"]``: this module registers itself with
Ray's cloudpickle to be pickled by value, so a sweep's trials can run :class:`Toy` without
importing this file.

Run as a script, it is the sweep driver of ``tests/tune/test_resume.py``::

    python tests/toy_trainable.py CONFIG.yaml --name NAME --tracking-uri URI --toy '{"n": 192}' \
        [--num-cpus 2] [--resume]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ray.cloudpickle

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def auc(y, score) -> float:
    """Binary ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class Toy:
    """The trainable; its fields are test knobs.

    Attributes:
        n: samples (half train, a quarter each val and test), 16 features.
        fail_at_epoch: raise once, on the first attempt to run that epoch (``fail_marker`` is
            written before raising, so the retry goes through).
        fail_marker: the file marking that the planned failure happened.
        epoch_seconds: sleep per epoch (time for a test to interrupt a sweep).
        log: a file that gets one JSON line per attempt (pid, start epoch, trial id).
    """

    n: int = 384
    fail_at_epoch: int | None = None
    fail_marker: str | None = None
    epoch_seconds: float = 0.0
    log: str | None = None

    def __call__(self, config: dict) -> None:
        from medxfer.methods.session import use_session
        from medxfer.train.sessions import TuneSession

        with use_session(TuneSession()) as session:
            self.run(config, session)

    def run(self, config: dict, session) -> None:
        """Train for ``train.epochs`` epochs, reporting to ``session`` (a medxfer Session).

        Reports per epoch: ``epoch``, ``start_epoch`` (where this attempt began, so tests see
        where a retry resumed), ``train_loss``, ``val_loss``, ``val_auc``, ``test_auc``.
        """
        import torch

        tr = config.get("train") or {}
        epochs = int(tr.get("epochs", 3))
        bs = int(tr.get("batch_size", 32))
        torch.manual_seed(0)
        splits = self._data()
        model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 1))
        opt, sched = self._optimizer(model, tr)
        start = self._restore(session, model, opt, sched)
        self._log_attempt(start)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        x_tr, y_tr = splits["train"]
        for epoch in range(start + 1, epochs + 1):
            self._maybe_fail(epoch)
            model.train()
            perm = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(epoch))
            total = 0.0
            for i in range(0, len(x_tr), bs):
                idx = perm[i:i + bs]
                opt.zero_grad()
                loss = loss_fn(model(x_tr[idx]).squeeze(1), y_tr[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            if sched is not None:
                sched.step()
            val_loss, val_auc = _evaluate(model, loss_fn, *splits["val"])
            _, test_auc = _evaluate(model, loss_fn, *splits["test"])
            if self.epoch_seconds:
                time.sleep(self.epoch_seconds)
            metrics = {"epoch": epoch, "start_epoch": start, "train_loss": total / len(x_tr),
                       "val_loss": val_loss, "val_auc": val_auc, "test_auc": test_auc}
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                            "sched": sched.state_dict() if sched is not None else None,
                            "epoch": epoch}, Path(tmp) / "state.pt")
                session.report(metrics, tmp)

    def _data(self):
        import torch

        g = torch.Generator().manual_seed(1234)
        x = torch.randn(self.n, 16, generator=g)
        w_true = torch.randn(16, generator=g)
        y = ((x @ w_true + 0.5 * torch.randn(self.n, generator=g)) > 0).float()
        n_tr, n_va = self.n // 2, self.n // 4
        return {"train": (x[:n_tr], y[:n_tr]), "val": (x[n_tr:n_tr + n_va], y[n_tr:n_tr + n_va]),
                "test": (x[n_tr + n_va:], y[n_tr + n_va:])}

    @staticmethod
    def _optimizer(model, tr: dict):
        import torch

        lr = float(tr.get("lr", 1e-2))
        wd = float(tr.get("weight_decay", 0.0) or 0.0)
        if str(tr.get("optimizer", "sgd")).lower() == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd,
                                  momentum=float(tr.get("momentum", 0.0) or 0.0))
        lam = tr.get("lambda_lr")
        sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda e: float(lam) ** e)
                 if lam is not None else None)
        return opt, sched

    @staticmethod
    def _restore(session, model, opt, sched) -> int:
        import torch

        ckpt = session.get_checkpoint()
        if ckpt is None:
            return 0
        state = torch.load(Path(ckpt) / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if sched is not None and state.get("sched"):
            sched.load_state_dict(state["sched"])
        return int(state["epoch"])

    def _log_attempt(self, start: int) -> None:
        if not self.log:
            return
        from ray import tune

        with open(self.log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "start_epoch": start,
                                "trial_id": tune.get_context().get_trial_id()}) + "\n")

    def _maybe_fail(self, epoch: int) -> None:
        if self.fail_at_epoch == epoch and self.fail_marker:
            marker = Path(self.fail_marker)
            if not marker.exists():
                marker.write_text(str(epoch))
                raise RuntimeError(f"toy trainable: planned failure at epoch {epoch}")


def _evaluate(model, loss_fn, xs, ys) -> tuple[float, float]:
    """(loss, AUC) on one split; a diverged model scores loss 1e9 and AUC 0.5."""
    import numpy as np
    import torch

    with torch.no_grad():
        logits = model(xs).squeeze(1)
        loss = float(loss_fn(logits, ys))
    probs = torch.sigmoid(logits).numpy()
    if not np.isfinite(loss) or not np.all(np.isfinite(probs)):
        return 1e9 if not np.isfinite(loss) else loss, 0.5
    return loss, auc(ys.numpy(), probs)


def main(argv: list[str] | None = None) -> int:
    """The resume test's sweep driver (module docstring)."""
    import argparse

    from medxfer.tune.experiment import load_experiment
    from medxfer.cli import stopped_exit_code
    from medxfer.tune.sweep import run_sweep

    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--name", required=True)
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--toy", default="{}", help="Toy fields as JSON")
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    try:
        res = run_sweep(load_experiment(args.config), name=args.name,
                        tracking_uri=args.tracking_uri, resume=args.resume,
                        trainable=Toy(**json.loads(args.toy)), num_cpus=args.num_cpus)
    except Exception as exc:  # a stalled sweep as `medxfer sweep` reports it
        code = stopped_exit_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return code
    print(res.summary(), flush=True)
    return 0 if res.n_errored < res.n_trials else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from toy_trainable import main as _main  # the registered module, not __main__

    sys.exit(_main())
