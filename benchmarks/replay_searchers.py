"""Replay every registered searcher on the benchmark's logged grid and print the table.

Per searcher, over all (source, target) pairs x seeds: median, p90 and mean of the trials until
the selected configuration's test AUC is within 0.005 of the ground truth (inf: not reached
within --budget; a trial on a configuration with no logged metrics counts as a failed trial).

    PYTHONPATH=platform python benchmarks/replay_searchers.py --seeds 5
    PYTHONPATH=platform python benchmarks/replay_searchers.py \\
        --tracking-uri sqlite:////abs/mlruns.db --benchmark dataset --benchmark architecture

Without --tracking-uri the published benchmark (../shared/benchmark/medmnist-transfer) is
imported into a temporary sqlite store first (~20-40 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "platform"))

from medxfer.tune.replay import replay, summarize  # noqa: E402
from medxfer.tune.searchers import list_searchers  # noqa: E402


def _progress(bench: str):
    """Progress on stderr (stdout keeps the tables): a line per searcher change and at most one
    every 10 s, with the (pair, seed) replays done so far."""
    last = {"t": 0.0, "searcher": None}

    def report(searcher: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if searcher != last["searcher"] or now - last["t"] > 10 or done == total:
            last.update(t=now, searcher=searcher)
            print(f"[{time.strftime('%H:%M:%S')}] {bench}: {searcher} {done}/{total} replays",
                  file=sys.stderr, flush=True)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracking-uri")
    ap.add_argument("--name", default=None)
    ap.add_argument("--benchmark", action="append", choices=["dataset", "architecture"])
    ap.add_argument("--searcher", action="append", choices=list_searchers())
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=360,
                    help="most trials per (pair, seed); 3x the grid lets repeating searchers "
                         "show their tail")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "benchmark" /
                                            "medmnist-transfer"))
    ap.add_argument("--per-pair-csv", help="also write every (searcher, pair, seed) row here")
    args = ap.parse_args(argv)
    uri = args.tracking_uri
    if uri is None:
        from medxfer.tracking.benchmark_import import import_benchmark

        tmp = tempfile.mkdtemp(prefix="replay-")
        uri = f"sqlite:///{tmp}/mlruns.db"
        print(f"importing {args.shared} into {uri} ...", file=sys.stderr, flush=True)
        res = import_benchmark(args.shared, name="medmnist-transfer", tracking_uri=uri)
        print(f"imported {res.runs_in_files} runs in {res.seconds:.0f} s into {uri}",
              file=sys.stderr, flush=True)
    searchers = args.searcher or list_searchers()
    frames = []
    for bench in args.benchmark or ["dataset"]:
        t0 = time.perf_counter()
        res = replay(uri, args.name, searchers=searchers, benchmark=bench, budget=args.budget,
                     seeds=args.seeds, progress=_progress(bench))
        res.insert(0, "benchmark", bench)
        frames.append(res)
        table = summarize(res)
        table.insert(0, "seconds", res.groupby("searcher", sort=False)["seconds"].sum().round(1))
        pairs = res.groupby(["row", "target"]).ngroups
        print(f"\n{bench} benchmark: {pairs} pairs x {args.seeds} seeds, budget "
              f"{args.budget}, tolerance 0.005 ({time.perf_counter() - t0:.0f} s)")
        print(table.to_string(float_format=lambda v: f"{v:.1f}"), flush=True)
    if args.per_pair_csv:
        import pandas as pd

        pd.concat(frames).to_csv(args.per_pair_csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
