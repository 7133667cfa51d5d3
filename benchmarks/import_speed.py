"""Benchmark import speed: MLflow's public client vs medxfer's bulk import, same sample, one run.

Baselines (each into its own fresh sqlite store):
  per-value  one client call per param / metric / tag (the naive loop)
  log_batch  one log_batch per run (medxfer's path for HTTP tracking servers)
Ours:
  bulk       medxfer.tracking.benchmark_import (DB-API inserts into MLflow's tables)

Prints runs/s for each and the ratio to ours. With --full, also imports the whole benchmark.

    python benchmarks/import_speed.py --sample 200 [--full] \\
        [--dir ../shared/benchmark/medmnist-transfer]
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sample_dir(src: Path, dst: Path, n: int) -> int:
    """Copy the first rows of every export so the sample spans both benchmarks."""
    files = sorted(src.glob("fined_*.csv"))
    per_file = max(1, n // len(files))
    total = 0
    for f in files:
        with open(f, newline="") as fh:
            rows = list(csv.reader(fh))
        keep = rows[: per_file + 1]
        total += len(keep) - 1
        with open(dst / f.name, "w", newline="") as fh:
            csv.writer(fh).writerows(keep)
    return total


def per_value(uri: str, directory: Path) -> None:
    from mlflow import MlflowClient

    from medxfer.tracking.benchmark_csv import find_files, parse_file
    from medxfer.tracking.store import ensure_experiment

    c = MlflowClient(tracking_uri=uri)
    exp = ensure_experiment(uri, "benchmark/naive")
    for f in find_files(directory):
        for r in parse_file(f).runs:
            run = c.create_run(exp, start_time=r.start_time, run_name=r.name)
            rid = run.info.run_id
            for k, v in r.params:
                c.log_param(rid, k, v)
            ts = r.end_time or r.start_time
            for k, v in r.metrics:
                c.log_metric(rid, k, v, timestamp=ts, step=0)
            for k, v in r.tags.items():
                c.set_tag(rid, k, v)
            c.set_terminated(rid, r.status, end_time=r.end_time)


def log_batch(uri: str, directory: Path) -> None:
    from mlflow import MlflowClient

    from medxfer.tracking.benchmark_csv import find_files, parse_file
    from medxfer.tracking.benchmark_import import log_run_with_client
    from medxfer.tracking.store import ensure_experiment

    c = MlflowClient(tracking_uri=uri)
    exp = ensure_experiment(uri, "benchmark/batch")
    for f in find_files(directory):
        for r in parse_file(f).runs:
            log_run_with_client(c, exp, r)


def bulk(uri: str, directory: Path) -> None:
    from medxfer.tracking.benchmark_import import import_benchmark

    import_benchmark(directory, name="bulk", tracking_uri=uri)


def timed(fn, uri, directory):
    from medxfer.tracking.store import ensure_experiment

    ensure_experiment(uri, "warmup")  # store creation (migrations) is not part of the timing
    t = time.perf_counter()
    fn(uri, directory)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=REPO.parent / "shared" / "benchmark" /
                    "medmnist-transfer")
    ap.add_argument("--sample", type=int, default=200, help="runs in the sample")
    ap.add_argument("--full", action="store_true", help="also time the whole benchmark")
    ap.add_argument("--skip-per-value", action="store_true")
    args = ap.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sample = tmp / "sample"
        sample.mkdir()
        n = sample_dir(args.dir, sample, args.sample)
        results = {}
        fns = [("per-value", per_value), ("log_batch", log_batch), ("bulk", bulk)]
        for name, fn in fns:
            if name == "per-value" and args.skip_per_value:
                continue
            results[name] = timed(fn, f"sqlite:///{tmp / (name + '.db')}", sample)
        ours = n / results["bulk"]
        print(f"sample: {n} runs")
        print(f"{'path':<10} {'seconds':>9} {'runs/s':>10} {'ours/this':>10}")
        for name, sec in results.items():
            rate = n / sec
            print(f"{name:<10} {sec:9.2f} {rate:10.1f} {ours / rate:10.1f}x")
        if args.full:
            from medxfer.tracking.benchmark_import import import_benchmark

            uri = f"sqlite:///{tmp / 'full.db'}"
            t = time.perf_counter()
            res = import_benchmark(args.dir, tracking_uri=uri)
            total = time.perf_counter() - t
            print(f"full benchmark: {res.written} runs in {total:.1f} s including store "
                  f"creation ({res.written / total:.0f} runs/s)")


if __name__ == "__main__":
    main()
