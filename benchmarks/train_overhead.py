"""Images/s of ``finetune`` on the fast path and through TorchTrainer vs a plain PyTorch loop.

Same data (synthetic pneumonia, 28x28), same model (tiny_cnn + linear head), same batch size,
same epochs, in one run. Every variant is timed end to end from "config in hand" to "done":
data loading, model construction, per-epoch training and validation, the final test
evaluation; the framework variants add what they cost (session, per-epoch checkpoints, metrics,
and for TorchTrainer the worker group start). Images/s = training images x epochs / seconds.
Goal (issue 3): fast path >= 0.95x the plain loop.

    PYTHONPATH=platform python benchmarks/train_overhead.py [--epochs 5] [--skip-trainer]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def plain_loop(cfg) -> None:
    """The baseline: what finetune does, written as a bare loop (no session, no checkpoints)."""
    import torch
    from torch.utils.data import DataLoader

    from medxfer.evaluation.metrics import classification_metrics
    from medxfer.data import load_target
    from medxfer.models import create_backbone

    d, t = cfg.data, cfg.train
    torch.manual_seed(t.seed)
    data = load_target(d.root, d.flag, d.size, n_train_per_class=d.n_train_per_class,
                       n_val_per_class=d.n_val_per_class, seed=d.seed)
    info = data["train"].info
    model = create_backbone("tiny_cnn", in_chans=data["train"].n_channels,
                            num_classes=info.n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    train = DataLoader(data["train"], batch_size=t.batch_size, shuffle=True)

    @torch.no_grad()
    def evaluate(ds):
        model.eval()
        ys, ss = [], []
        for x, y in DataLoader(ds, batch_size=t.batch_size):
            ss.append(model(x).softmax(1))
            ys.append(y)
        return classification_metrics(info.task, torch.cat(ys).numpy(), torch.cat(ss).numpy())

    for _ in range(t.epochs):
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        evaluate(data["val"])
    evaluate(data["test"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n-per-class", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-trainer", action="store_true")
    args = ap.parse_args()

    from medxfer.methods.experiment import parse_experiment
    from medxfer.data.synth import synthesize
    from medxfer.train.launcher import fit_trainer, run_local

    tmp = Path(tempfile.mkdtemp(prefix="medxfer-bench-"))
    synthesize(tmp / "data", size=28, n_per_class=args.n_per_class,
               modalities=["synthpneumonia"])

    def config(workers: int):
        return parse_experiment({
            "method": "finetune", "data": {"root": str(tmp / "data"), "flag": "synthpneumonia",
                                           "n_train_per_class": None, "n_val_per_class": None},
            "model": {"backbone": "tiny_cnn"},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.05},
            "scaling": {"num_workers": workers}})

    cfg = config(1)
    n_train = 2 * args.n_per_class
    images = n_train * args.epochs
    times: dict[str, float] = {}

    def timed(label: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times[label] = min(times.get(label, float("inf")), dt)
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {dt:.1f} s", file=sys.stderr, flush=True)

    plain_loop(config(1).model_copy(update={"train": cfg.train.model_copy(
        update={"epochs": 1})}))  # warm-up: imports, allocator, page cache
    for i in range(args.repeats):  # alternate, keep the best of each (a busy machine)
        timed("plain PyTorch loop", lambda: plain_loop(cfg))
        timed("fast path (run_local)",
              lambda i=i: run_local(cfg, storage_dir=tmp / f"fast{i}", keep=2))
    if not args.skip_trainer:
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=300 * 1024 * 1024)
        try:
            for workers in (1, 2):
                timed(f"TorchTrainer, {workers} worker(s)",
                      lambda workers=workers: fit_trainer(config(workers), name=f"bench{workers}",
                                                          storage_path=tmp / "ray"))
        finally:
            ray.shutdown()
    base = times["plain PyTorch loop"]
    print(f"\nfinetune, tiny_cnn 28x28, {n_train} train images, batch {args.batch_size}, "
          f"{args.epochs} epochs (best of {args.repeats} for the in-process variants)")
    print(f"{'variant':34s} {'seconds':>8s} {'images/s':>9s} {'vs plain':>9s}")
    for label, dt in times.items():
        print(f"{label:34s} {dt:8.2f} {images / dt:9.1f} {base / dt:8.2f}x")
    ratio = base / times["fast path (run_local)"]
    print(f"fast path / plain loop = {ratio:.3f}x (goal >= 0.95x): "
          f"{'met' if ratio >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    main()
