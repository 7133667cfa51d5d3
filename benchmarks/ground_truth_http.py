"""Ground truth through an ``mlflow server``: medxfer's read path vs ``mlflow.search_runs``.

Steps (all in a temporary folder, nothing downloaded):
  1. bulk-import the published benchmark (``fined_*.csv``) into a fresh sqlite file;
  2. serve that file with ``mlflow server --app-name medxfer`` on 127.0.0.1 and time
       ours       ``medxfer benchmark ground-truth --tracking-uri http://...`` (the server
                  runs the run-table query, ``medxfer.tracking.server_app``);
  3. serve it with a stock ``mlflow server`` (unless ``--skip-stock``) and time
       ours       the same verb (it pages MLflow's ``runs/search``), and
       baseline   ``mlflow.search_runs`` of the experiment (the public client: every run,
                  every field, as a DataFrame), the read the issue timed;
  4. time the same verb on the sqlite file, for reference and to check the tables;
  5. print the seconds, the ratio baseline/this, and whether each table equals sqlite's.
Each read runs in a fresh subprocess (wall clock, interpreter start and imports included).

Both HTTP reads get ``MLFLOW_HTTP_REQUEST_TIMEOUT=900``: on a loaded machine one page of
search results can take longer than MLflow's 120 s default, and a timeout is not a result.

    python benchmarks/ground_truth_http.py [--workers 1] [--skip-stock]
        [--dir ../shared/benchmark/medmnist-transfer | --store benchmark.db]
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
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
mlflow.set_tracking_uri(args["--uri"])
df = mlflow.search_runs(experiment_names=[args["--experiment"]], max_results=100_000)
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


def serve_and_time(db: Path, tmp: Path, workers: int, app: str | None, reads: list) -> dict:
    """Serve ``db`` (``--app-name app`` if given) and time each ``(label, argv)`` of ``reads``."""
    from medxfer.tracking.server import MlflowServer

    extra = ["--app-name", app] if app else []
    say(f"starting mlflow server {' '.join(extra) or '(stock)'} on {db} ({workers} worker(s))")
    t, out = time.perf_counter(), {}
    with MlflowServer(f"sqlite:///{db}", tmp / "artifacts", workers=workers,
                      startup_timeout=300, extra_args=extra) as server:
        say(f"server {server.uri} up in {time.perf_counter() - t:.1f} s")
        pgid = server.proc.pid  # the server runs in a session (process group) of its own
        for label, argv in reads:
            say(f"{label} (subprocess)")
            out[label] = timed_subprocess([*argv, server.uri], tmp / "cwd", pgid)
            say(f"  {out[label]['wall']:.1f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path,
                    default=REPO.parent / "shared" / "benchmark" / "medmnist-transfer")
    ap.add_argument("--store", type=Path, help="a sqlite file already holding "
                    f"benchmark/{NAME} (read-only here; skips the import)")
    ap.add_argument("--workers", type=int, default=1, help="mlflow server worker processes")
    ap.add_argument("--skip-stock", action="store_true",
                    help="time only the --app-name medxfer server (the stock reads take minutes)")
    args = ap.parse_args()

    medxfer = [str(Path(sys.executable).with_name("medxfer"))]
    verb = [*medxfer, "benchmark", "ground-truth", "--name", NAME, "--format", "csv",
            "--tracking-uri"]
    baseline = [sys.executable, "-c", _BASELINE]  # + uri; the experiment is appended below
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = tmp / "cwd"
        work.mkdir()
        db = tmp / "benchmark.db"
        if args.store:
            import shutil

            shutil.copy(args.store, db)  # the server may write (e.g. its own tables)
            n = None
        else:
            say(f"bulk-importing {args.dir} into {db}")
            n = import_store(args.dir, db)
        rows = serve_and_time(db, tmp, args.workers, "medxfer",
                              [("ours: ground-truth via http, --app-name medxfer", verb)])
        if not args.skip_stock:
            rows.update(serve_and_time(db, tmp, args.workers, None, [
                ("ours: ground-truth via http, stock server", verb),
                ("baseline: mlflow.search_runs via http, stock",
                 [*baseline[:3], "--experiment", f"benchmark/{NAME}", "--uri"])]))
        say("reference: the same verb on the sqlite file (subprocess)")
        rows["reference: ground-truth on sqlite"] = timed_subprocess(
            [*verb, f"sqlite:///{db}"], work)
        stray = [p.name for p in work.iterdir()]
    ref = rows["reference: ground-truth on sqlite"]
    base = rows.get("baseline: mlflow.search_runs via http, stock")
    print()
    print(f"benchmark: {n or 'copied store'} runs; ground truth "
          f"{len(ref['out'].splitlines()) - 1} rows")
    print(f"{'read':<50} {'wall s':>7} {'baseline/this':>14} {'client CPU s':>13} "
          f"{'server CPU s':>13}")
    for label, r in rows.items():
        ratio = f"{base['wall'] / r['wall']:13.1f}x" if base else f"{'-':>14}"
        print(f"{label:<50} {r['wall']:7.1f} {ratio} {r['client_cpu']:13.1f} "
              f"{r['server_cpu']:13.1f}")
    for label, r in rows.items():
        if label.startswith("ours"):
            print(f"{label}: equals the sqlite table cell for cell: {r['out'] == ref['out']}")
    print(f"files left in the working directory: {stray or 'none'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
