"""Speed of every transferability metric on 1,100 x 512 float32 features, 11 classes.

Synthetic, seeded data (overlapping Gaussian classes). Median of 3 runs per metric. SFDA and
LogME are also timed in their slow direct transcriptions (tests/transferability/_reference.py,
the reference algorithms) with the ratio, and their values compared; fast and slow runs are
interleaved so both see the same background load. FU runs on a random-init
ResNet18 over 66 images of 64x64 (batches of floor(N/6) = 11).

    PYTHONPATH=platform python benchmarks/metrics_speed.py [--repeats 3] [--skip fu,lp]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT / "tests")]

from medxfer.transferability import get_metric, list_metrics, metric_info  # noqa: E402
from transferability._reference import logme_slow, sfda_slow  # noqa: E402

N, D, C = 1100, 512, 11


def data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    centres = rng.normal(size=(C, D)) * 0.05  # overlapping: no metric saturates
    x = (np.abs(rng.normal(size=(N, D))) + centres[y]).astype(np.float32)
    logits = rng.normal(size=(N, 1000)).astype(np.float32)
    logits[np.arange(N), y * 7] += 2.0
    return x, y, logits


def median_time(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def fu_call():
    import torch
    import torchvision
    from torch.utils.data import TensorDataset

    from medxfer.transferability.fu import fu_loader

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=C)
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(66, 3, 64, 64, generator=g),
                       torch.randint(0, C, (66,), generator=g))
    return lambda: get_metric("fu")(model, fu_loader(ds), progress=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated metric names to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    x, y, logits = data()
    print(f"features {N} x {D} float32, {C} classes; median of {args.repeats} runs (seconds)")
    print(f"{'metric':<8} {'seconds':>9}  value", flush=True)
    for name in list_metrics():
        if name in skip:
            continue
        if metric_info(name).needs == {"model"}:
            fn = fu_call()
        else:
            def fn(n=name):
                return get_metric(n)(x, y, source_logits=logits, random_state=0)
        sec, value = median_time(fn, args.repeats)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in value._asdict().items()) \
            if hasattr(value, "_asdict") else f"{value:.6f}"
        print(f"{name:<8} {sec:9.3f}  {shown}", flush=True)  # a line per metric: progress
    print("\nfast vs slow direct transcription (same numbers expected)")
    print(f"{'metric':<8} {'fast s':>8} {'slow s':>8} {'ratio':>7}  fast value / slow value")
    for name, slow in (("sfda", sfda_slow), ("logme", logme_slow)):
        if name in skip:
            continue
        # Interleaved, so both see the same background load on a shared machine.
        runs = [(median_time(lambda n=name: get_metric(n)(x, y), 1),
                 median_time(lambda s=slow: s(x, y), 1)) for _ in range(args.repeats)]
        t_fast = statistics.median(r[0][0] for r in runs)
        t_slow = statistics.median(r[1][0] for r in runs)
        v_fast, v_slow = runs[-1][0][1], runs[-1][1][1]
        print(f"{name:<8} {t_fast:8.3f} {t_slow:8.3f} {t_slow / t_fast:6.1f}x  "
              f"{v_fast:.10f} / {v_slow:.10f}", flush=True)


if __name__ == "__main__":
    main()
