"""Ground truth through an ``mlflow server``: medxfer's read path vs ``mlflow.search_runs``.

Steps (all in a temporary folder, nothing downloaded):
  1. bulk-import the published benchmark (``fined_*.csv``) into a fresh sqlite file;
  2. serve that file with ``mlflow server`` on 127.0.0.1 (``MlflowServer``);
  3. time, each in a fresh subprocess (wall clock, interpreter start and imports included):
       ours       ``medxfer benchmark ground-truth --tracking-uri http://...``
       baseline   ``mlflow.search_runs`` of the experiment on the same server (the public
                  client: every run, every field, as a DataFrame), the read the issue timed;
       sqlite     the same verb on the sqlite file, for reference and to check the table;
  4. print the seconds, the ratio baseline/ours, and whether ours equals the sqlite table.

Both HTTP reads get ``MLFLOW_HTTP_REQUEST_TIMEOUT=900``: on a loaded machine one page of
search results can take longer than MLflow's 120 s default, and a timeout is not a result.

    python benchmarks/ground_truth_http.py [--workers 1]
        [--dir ../shared/benchmark/medmnist-transfer]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import run_timed, say  # noqa: E402  (benchmarks/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAME = "medmnist-transfer"
TIMEOUT = "900"

_BASELINE = """
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
df = mlflow.search_runs(experiment_names=[sys.argv[2]], max_results=100_000)
print(len(df))
"""


def group_cpu_seconds(pgid: int | None) -> float:
    """User + system CPU seconds of the live processes of process group ``pgid`` (the server:
    ``mlflow server`` and its uvicorn worker)."""
    if pgid is None:
        return 0.0
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def timed_subprocess(cmd: list[str], cwd: Path, server_pgid: int | None = None) -> dict:
    """Wall seconds, the child's CPU seconds, the server's CPU seconds, and stdout."""
    server0 = group_cpu_seconds(server_pgid)
    wall, client_cpu, out = run_timed(cmd, cwd, {"MLFLOW_HTTP_REQUEST_TIMEOUT": TIMEOUT})
    return {"wall": wall, "client_cpu": client_cpu,
            "server_cpu": group_cpu_seconds(server_pgid) - server0, "out": out}


def import_store(directory: Path, db: Path) -> int:
    from medxfer.tracking.benchmark_import import import_benchmark

    last = [0.0]

    def progress(fname: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            say(f"  importing {fname}: {done}/{total} runs")

    res = import_benchmark(directory, name=NAME, tracking_uri=f"sqlite:///{db}",
                           progress=progress)
    say(f"imported {res.written} runs in {res.seconds:.1f} s")
    return res.written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path,
                    default=REPO.parent / "shared" / "benchmark" / "medmnist-transfer")
    ap.add_argument("--workers", type=int, default=1, help="mlflow server worker processes")
    args = ap.parse_args()
    from medxfer.tracking.server import MlflowServer

    medxfer = [str(Path(sys.executable).with_name("medxfer"))]
    verb = ["benchmark", "ground-truth", "--name", NAME, "--format", "csv"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = tmp / "cwd"
        work.mkdir()
        db = tmp / "benchmark.db"
        say(f"bulk-importing {args.dir} into {db}")
        n = import_store(args.dir, db)
        say(f"starting mlflow server on {db} ({args.workers} worker(s))")
        t = time.perf_counter()
        with MlflowServer(f"sqlite:///{db}", tmp / "artifacts", workers=args.workers,
                          startup_timeout=300) as server:
            say(f"server {server.uri} up in {time.perf_counter() - t:.1f} s")
            pgid = server.proc.pid  # the server runs in a session (process group) of its own
            say("ours: medxfer benchmark ground-truth --tracking-uri http://... (subprocess)")
            ours = timed_subprocess([*medxfer, *verb, "--tracking-uri", server.uri], work, pgid)
            say(f"  {ours['wall']:.1f} s")
            say("baseline: mlflow.search_runs on the same server (subprocess)")
            base = timed_subprocess([sys.executable, "-c", _BASELINE, server.uri,
                                     f"benchmark/{NAME}"], work, pgid)
            say(f"  {base['wall']:.1f} s ({base['out'].strip()} runs)")
        say("reference: the same verb on the sqlite file (subprocess)")
        sql = timed_subprocess([*medxfer, *verb, "--tracking-uri", f"sqlite:///{db}"], work)
        say(f"  {sql['wall']:.1f} s")
        stray = [p.name for p in work.iterdir()]
    print()
    print(f"benchmark: {n} runs; ground truth {len(ours['out'].splitlines()) - 1} rows")
    print(f"{'read':<44} {'wall s':>7} {'baseline/this':>14} {'client CPU s':>13} "
          f"{'server CPU s':>13}")
    for label, r in [("ours: ground-truth via http (medxfer)", ours),
                     ("baseline: mlflow.search_runs via http", base),
                     ("reference: ground-truth on sqlite (medxfer)", sql)]:
        print(f"{label:<44} {r['wall']:7.1f} {base['wall'] / r['wall']:13.1f}x "
              f"{r['client_cpu']:13.1f} {r['server_cpu']:13.1f}")
    print(f"http table equals sqlite table cell for cell: {ours['out'] == sql['out']}")
    print(f"files left in the working directory: {stray or 'none'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
