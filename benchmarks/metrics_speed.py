"""Every transferability metric timed against the spec's reference computation, side by side.

Data: 1,100 x 512 float32 features, 11 classes (overlapping Gaussian classes, seeded), source
logits over 1,000 classes; FU runs on a random-init ResNet18 over 66 images of 64x64 (batches
of floor(N/6) = 11). The reference of each metric is in ``benchmarks/metrics_reference.py``:
the library calls that shared/specs/transferability-metrics.md says the thesis code makes
(e.g. sklearn's GaussianMixture for NLEEP, its NCA for LP, scipy's spearmanr for PARC).

Runs are interleaved (ours, reference, reference, ours, ...) after one untimed warm-up of each
on a 200-sample slice, so both see the same background load; the table gives the medians of wall
time and of process CPU time, ratio = reference / ours (> 1: ours is faster) and the largest
absolute difference between the values (NLEEP at the same random_state; NCTI over its three
terms). ``--threads N`` caps BLAS/OpenMP and torch threads for both sides alike (useful on a
loaded machine, where spinning BLAS threads make wall times erratic).

    PYTHONPATH=platform python benchmarks/metrics_speed.py [--repeats 3] [--skip fu,lp]
        [--only nleep] [--threads 1] [--random-state 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT / "benchmarks")]

import metrics_reference as ref  # noqa: E402

from medxfer.transferability import get_metric, list_metrics  # noqa: E402

N, D, C = 1100, 512, 11
WARM = 200  # samples of the untimed warm-up call (imports, first-call caches)


def data(seed=0):
    """(features (N, D) float32, labels (N,), logits (N, 1000) float32)."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    centres = rng.normal(size=(C, D)) * 0.05  # overlapping: no metric saturates
    x = (np.abs(rng.normal(size=(N, D))) + centres[y]).astype(np.float32)
    logits = rng.normal(size=(N, 1000)).astype(np.float32)
    logits[np.arange(N), y * 7] += 2.0
    return x, y, logits


def fu_pair(n_images=66, warm=False):
    """(ours, reference) FU calls on a random-init ResNet18 (no download)."""
    import torch
    import torchvision
    from torch.utils.data import TensorDataset

    from medxfer.transferability.fu import fu_loader

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchvision.models.resnet18(num_classes=C)
    g = torch.Generator().manual_seed(0)
    n = 24 if warm else n_images
    # Random labels: every batch of floor(n/6) then holds some valid triplets.
    ds = TensorDataset(torch.randn(n, 3, 64, 64, generator=g),
                       torch.randint(0, 2 if warm else C, (n,), generator=g))
    return (lambda: get_metric("fu")(model, fu_loader(ds), progress=False),
            lambda: ref.fu_reference(model, fu_loader(ds), "conv1", "layer1.0.conv1"))


def feature_pair(name, x, y, logits, seed):
    """(ours, reference) calls of a feature or logit metric."""
    fn = get_metric(name)
    rs = {"random_state": seed} if name == "nleep" else {}
    ours = lambda: fn(x, y, source_logits=logits, **rs)  # noqa: E731
    refs = {
        "logme": lambda: ref.logme_reference(x, y),
        "leep": lambda: ref.leep_reference(logits, y),
        "nleep": lambda: ref.nleep_reference(x, y, seed),
        "parc": lambda: ref.parc_reference(x, y),
        "sfda": lambda: ref.sfda_reference(x, y),
        "ncti": lambda: ref.ncti_reference(x, y),
        "gbc": lambda: ref.gbc_reference(x, y),
        "lp": lambda: ref.lp_reference(x, y),
    }
    if name not in refs:
        raise SystemExit(f"no reference computation for metric {name!r}: add one to "
                         "benchmarks/metrics_reference.py")
    return ours, refs[name]


def timed(fn):
    """(wall seconds, CPU seconds, value) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.atleast_1d(np.asarray(a, float)) -
                               np.atleast_1d(np.asarray(b, float)))))


@contextlib.contextmanager
def thread_cap(n):
    """Cap BLAS/OpenMP (threadpoolctl) and torch intra-op threads at n; None: no cap."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def measure(name, pair, warm_pair, repeats):
    """Interleaved timings of one metric; prints progress; returns its table row."""
    warm_pair[0]()
    warm_pair[1]()
    runs = []
    for i in range(repeats):
        if i % 2 == 0:  # alternate which side goes first: neither inherits the other's
            ours, reference = timed(pair[0]), timed(pair[1])  # warm caches every time
        else:
            reference, ours = timed(pair[1]), timed(pair[0])
        runs.append((ours, reference))
        print(f"  {name}: run {i + 1}/{repeats}: ours {ours[0]:.3f} s, reference "
              f"{reference[0]:.3f} s", flush=True)
    med = [statistics.median(r[side][k] for r in runs) for side in (0, 1) for k in (0, 1)]
    ours_wall, ours_cpu, ref_wall, ref_cpu = med
    diff = max(max_diff(o[2], r[2]) for o, r in runs)
    return name, ref_wall, ours_wall, ref_cpu, ours_cpu, diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated metric names to skip")
    ap.add_argument("--only", default="", help="comma-separated metric names to run")
    ap.add_argument("--threads", type=int, default=None,
                    help="cap BLAS/OpenMP/torch threads for both sides (default: no cap)")
    ap.add_argument("--random-state", type=int, default=0, help="NLEEP's GMM seed")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    names = [m for m in list_metrics() if m not in skip and (not only or m in only)]
    x, y, logits = data()
    print(f"features {N} x {D} float32, {C} classes, logits over 1000; median of "
          f"{args.repeats} interleaved runs; threads: {args.threads or 'uncapped'}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with thread_cap(args.threads):
        for name in names:
            if name == "fu":
                pair, warm = fu_pair(), fu_pair(warm=True)
            else:
                pair = feature_pair(name, x, y, logits, args.random_state)
                warm = feature_pair(name, x[:WARM], y[:WARM], logits[:WARM],
                                    args.random_state)
            rows.append(measure(name, pair, warm, args.repeats))
    print(f"\n{'metric':<7} {'ref s':>8} {'ours s':>8} {'ratio':>6} {'ref cpu':>8} "
          f"{'ours cpu':>8} {'ratio':>6}  max |diff|")
    for name, rw, ow, rc, oc, diff in rows:
        print(f"{name:<7} {rw:8.3f} {ow:8.3f} {rw / ow:6.2f} {rc:8.3f} {oc:8.3f} "
              f"{rc / oc:6.2f}  {diff:.1e}")
    totals = [sum(r[k] for r in rows) for k in (1, 2, 3, 4)]
    print(f"{'sum':<7} {totals[0]:8.3f} {totals[1]:8.3f} {totals[0] / totals[1]:6.2f} "
          f"{totals[2]:8.3f} {totals[3]:8.3f} {totals[2] / totals[3]:6.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
