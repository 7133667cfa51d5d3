"""Benchmark import speed: MLflow's public client vs medxfer's bulk import, same sample, one run.

Baselines (each into its own fresh sqlite store):
  per-value  one client call per param / metric / tag (the naive loop)
  log_batch  one log_batch per run (medxfer's path for HTTP tracking servers)
Ours:
  bulk       medxfer.tracking.benchmark_import (DB-API inserts into MLflow's tables)

Prints runs/s for each and the ratio to ours. With --full, also imports the whole benchmark.

With ``--postgres``, one benchmark file (``--file``, default ``fined_blood.csv``, 1,680 runs)
goes into a real PostgreSQL server (``PostgresServer``, durable settings), each path into a
fresh database whose MLflow schema is created before the clock starts:
  bulk            medxfer's bulk import straight into PostgreSQL (COPY)
  log_batch       sequential ``log_batch`` per run, MLflow's client straight on the store
  server WxH      medxfer's HTTP path (``log_batch`` per run, H client threads) through an
                  ``mlflow server`` with W workers backed by PostgreSQL, for each
                  ``--server-workers`` W and ``--http-workers`` H
  server seq      sequential ``log_batch`` through the server (1 worker, 1 thread)

    python benchmarks/import_speed.py --sample 200 [--full]
        [--dir ../shared/benchmark/medmnist-transfer]
    python benchmarks/import_speed.py --postgres [--file fined_blood.csv] [--server-workers 1 4]
        [--http-workers 8 16] [--no-seq]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import say  # noqa: E402  (benchmarks/ is on sys.path)

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


def with_progress(label: str, total: int):
    """A ``progress(fname, done, total)`` callback printing at most every 10 s (stderr)."""
    last = [time.perf_counter()]

    def progress(fname: str, done: int, total_: int) -> None:
        if time.perf_counter() - last[0] > 10 or done == total_:
            last[0] = time.perf_counter()
            say(f"  {label}: {done}/{total_ or total} runs")
    return progress


def log_batch_progress(uri: str, directory: Path, label: str) -> None:
    """Sequential ``log_batch`` per run with MLflow's public client (progress on stderr)."""
    from mlflow import MlflowClient

    from medxfer.tracking.benchmark_csv import find_files, parse_file
    from medxfer.tracking.benchmark_import import _no_run_urls, log_run_with_client
    from medxfer.tracking.store import ensure_experiment

    c = MlflowClient(tracking_uri=uri)
    exp = ensure_experiment(uri, "benchmark/batch")
    runs = [r for f in find_files(directory) for r in parse_file(f).runs]
    progress = with_progress(label, len(runs))
    with _no_run_urls():
        for i, r in enumerate(runs, 1):
            log_run_with_client(c, exp, r)
            progress("", i, len(runs))


def postgres_paths(args, directory: Path, tmp: Path) -> None:
    """One file into PostgreSQL: bulk, sequential log_batch, through mlflow server."""
    from medxfer.tracking.benchmark_csv import find_files, parse_file
    from medxfer.tracking.benchmark_import import import_benchmark
    from medxfer.tracking.postgres import PostgresServer
    from medxfer.tracking.server import MlflowServer
    from medxfer.tracking.store import ensure_experiment

    from ground_truth_http import group_cpu_seconds  # sibling script: a server's CPU seconds

    n = sum(len(parse_file(f).runs) for f in find_files(directory))
    results: list[tuple[str, float]] = []
    server_cpu: dict[str, float] = {}
    with PostgresServer(durable=True) as pg:
        say(f"PostgreSQL up at {pg.socket_dir}; {n} runs in {args.file}")

        def fresh(label: str) -> str:
            uri = pg.create_database(label.replace(" ", "_").lower())
            say(f"{label}: creating MLflow's schema (not timed)")
            ensure_experiment(uri, "warmup")
            return uri

        uri = fresh("bulk")
        t = time.perf_counter()
        import_benchmark(directory, name="bulk", tracking_uri=uri,
                         progress=with_progress("bulk", n))
        results.append(("bulk (COPY, direct)", time.perf_counter() - t))
        say(f"bulk: {results[-1][1]:.1f} s")
        if not args.no_seq:
            uri = fresh("logbatch")
            t = time.perf_counter()
            log_batch_progress(uri, directory, "log_batch direct")
            results.append(("log_batch, sequential, direct", time.perf_counter() - t))
            say(f"log_batch direct: {results[-1][1]:.1f} s")
        combos = [(w, h) for w in args.server_workers for h in args.http_workers]
        if not args.no_seq:
            combos.append((1, 0))
        for w, h in combos:
            label = f"server w{w} h{h}" if h else "server seq"
            uri = fresh(label)
            with MlflowServer(uri, tmp / f"art-{w}-{h}", workers=w, startup_timeout=300,
                              log_path=tmp / f"server-{w}-{h}.log") as server:
                say(f"{label}: server {server.uri} ({w} worker(s)), "
                    f"{h or 'sequential'} client thread(s)")
                t = time.perf_counter()
                cpu0 = group_cpu_seconds(server.proc.pid)
                if h:
                    import_benchmark(directory, name="http", tracking_uri=server.uri,
                                     http_workers=h, progress=with_progress(label, n))
                    name = f"through server: {w} worker(s), {h} threads"
                else:
                    log_batch_progress(server.uri, directory, label)
                    name = "through server: log_batch, sequential"
                results.append((name, time.perf_counter() - t))
                server_cpu[name] = group_cpu_seconds(server.proc.pid) - cpu0
            say(f"{label}: {results[-1][1]:.1f} s, server CPU {server_cpu[name]:.1f} s")
    bulk = n / results[0][1]
    print(f"PostgreSQL, one file ({args.file}): {n} runs")
    print(f"{'path':<46} {'seconds':>8} {'runs/s':>8} {'bulk/this':>10} "
          f"{'server CPU ms/run':>18}")
    for name, sec in results:
        cpu = f"{1000 * server_cpu[name] / n:18.0f}" if name in server_cpu else f"{'':>18}"
        print(f"{name:<46} {sec:8.1f} {n / sec:8.1f} {bulk / (n / sec):9.1f}x {cpu}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


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
    ap.add_argument("--postgres", action="store_true",
                    help="one file into PostgreSQL: bulk, log_batch, through mlflow server")
    ap.add_argument("--file", default="fined_blood.csv", help="the file --postgres imports")
    ap.add_argument("--server-workers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--http-workers", type=int, nargs="+", default=[8])
    ap.add_argument("--no-seq", action="store_true",
                    help="skip the sequential log_batch paths (the slowest)")
    args = ap.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.postgres:
            one = tmp / "one"
            one.mkdir()
            shutil.copy(args.dir / args.file, one / args.file)
            postgres_paths(args, one, tmp)
            return
        sample = tmp / "sample"
        sample.mkdir()
        n = sample_dir(args.dir, sample, args.sample)
        results = {}
        fns = [("per-value", per_value), ("log_batch", log_batch), ("bulk", bulk)]
        for name, fn in fns:
            if name == "per-value" and args.skip_per_value:
                continue
            say(f"{name}: {n} runs into a fresh sqlite store ...")
            results[name] = timed(fn, f"sqlite:///{tmp / (name + '.db')}", sample)
            say(f"{name}: {results[name]:.1f} s")
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
            res = import_benchmark(args.dir, tracking_uri=uri,
                                   progress=with_progress("full benchmark", 0))
            total = time.perf_counter() - t
            print(f"full benchmark: {res.written} runs in {total:.1f} s including store "
                  f"creation ({res.written / total:.0f} runs/s)")


if __name__ == "__main__":
    main()
