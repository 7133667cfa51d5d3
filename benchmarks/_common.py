"""Helpers every benchmark script shares: timestamped progress on stderr, and timing a child
process (wall and CPU seconds) with ``MLFLOW_TRACKING_URI`` removed, so that a verb must talk
to the store it is given."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def say(msg: str) -> None:
    """One progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_timed(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None
              ) -> tuple[float, float, str]:
    """Run ``cmd``; returns wall seconds, the child's CPU seconds (user + system) and stdout.

    Exits the benchmark with the child's stderr tail when it fails: a timing of a failed
    command would be meaningless.
    """
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(extra_env or {})
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return wall, cpu, proc.stdout
