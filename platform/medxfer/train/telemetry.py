"""Per-trial hardware telemetry, sampled in the training process itself.

A daemon thread samples this process every ``interval`` seconds: CPU % (psutil, of this process
and its children), RSS memory, and — when CUDA is available — GPU utilisation and memory
(``torch.cuda``; ``nvidia-smi`` for utilisation when torch cannot read it). :meth:`Sampler.snapshot`
returns the aggregates since the last snapshot as ``system/*`` metrics, the counterparts of the
published benchmark's radT columns (``TOP - CPU Utilization``, ``TOP - Memory Usage GB``,
``SMI - GPU Util``, ``SMI - Mem Used``):

``system/cpu_percent`` (mean), ``system/cpu_percent_max``, ``system/memory_rss_mb`` (peak),
``system/gpu_utilization_percent`` (mean), ``system/gpu_memory_mb`` (peak), ``system/samples``.

:class:`Telemetry` is what the Ray-bound sessions (:mod:`medxfer.train.sessions`) add to every
report they make: the snapshot since their previous report, plus :data:`NODE_ID_RESULT` (the
Ray node id of this process; on a cluster it says which node ran the trial, which
``node_ip``/``hostname`` cannot for nodes on one machine). The sweep's MLflow callback turns
that entry into the child run's tag ``medxfer.node_id``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from typing import Callable, Optional

log = logging.getLogger(__name__)

NODE_ID_RESULT = "system/node_id"  # result key: Ray node id (hex) of the reporting process


def _gpu_reader() -> Optional[Callable[[], tuple[float | None, float | None]]]:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    if not torch.cuda.is_available():
        return None
    smi = shutil.which("nvidia-smi")
    dev = torch.cuda.current_device()

    def read() -> tuple[float | None, float | None]:
        util = None
        try:
            util = float(torch.cuda.utilization(dev))
        except Exception:
            if smi:
                try:
                    out = subprocess.run(
                        [smi, f"--id={dev}", "--query-gpu=utilization.gpu",
                         "--format=csv,noheader,nounits"],
                        capture_output=True, text=True, timeout=5).stdout.strip()
                    util = float(out.splitlines()[0])
                except Exception:
                    util = None
        try:
            mem = torch.cuda.memory_reserved(dev) / 2**20
        except Exception:
            mem = None
        return util, mem

    return read


class Sampler:
    """Samples process ``pid`` (default: this one) every ``interval`` seconds in a daemon
    thread; :meth:`snapshot` aggregates and resets (module docstring)."""

    def __init__(self, interval: float = 1.0, pid: int | None = None):
        import psutil

        self.interval = interval
        self._proc = psutil.Process(pid or os.getpid())
        self._gpu = _gpu_reader()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reset()
        self._thread = threading.Thread(target=self._run, name="medxfer-telemetry", daemon=True)
        self._proc.cpu_percent(None)  # prime

    def _reset(self) -> None:
        self._cpu: list[float] = []
        self._rss = 0.0
        self._gpu_util: list[float] = []
        self._gpu_mem = 0.0

    def _sample(self) -> None:
        import psutil

        try:
            cpu = self._proc.cpu_percent(None)
            rss = self._proc.memory_info().rss
            for child in self._proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            return
        util = mem = None
        if self._gpu is not None:
            util, mem = self._gpu()
        with self._lock:
            self._cpu.append(cpu)
            self._rss = max(self._rss, rss / 2**20)
            if util is not None:
                self._gpu_util.append(util)
            if mem is not None:
                self._gpu_mem = max(self._gpu_mem, mem)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)

    def snapshot(self) -> dict[str, float]:
        """Aggregates since the last snapshot (takes one sample now so none is empty)."""
        self._sample()
        with self._lock:
            cpu, rss, gu, gm = self._cpu, self._rss, self._gpu_util, self._gpu_mem
            self._reset()
        out = {
            "system/cpu_percent": sum(cpu) / len(cpu) if cpu else 0.0,
            "system/cpu_percent_max": max(cpu) if cpu else 0.0,
            "system/memory_rss_mb": rss,
            "system/samples": float(len(cpu)),
        }
        if self._gpu is not None:
            if gu:
                out["system/gpu_utilization_percent"] = sum(gu) / len(gu)
            out["system/gpu_memory_mb"] = gm
        return out


_PROCESS: Sampler | None = None
_PROCESS_LOCK = threading.Lock()


def process_sampler(interval: float = 1.0) -> Sampler:
    """This process's sampler, started on first use and kept for the process' life (one
    thread per process: a reused Tune actor runs many trials, each with a session)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = Sampler(interval).start()
        return _PROCESS


def current_node_id() -> str | None:
    """The Ray node id of this process, or None outside Ray."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        return ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - telemetry must never fail a trial
        return None


class Telemetry:
    """The ``system/*`` entries a session adds to each report: the process's aggregates since
    the previous report (the first: since this object was made) and the node id."""

    def __init__(self, interval: float = 1.0):
        node = current_node_id()
        self._extra = {NODE_ID_RESULT: node} if node else {}
        self._sampler = process_sampler(interval)
        self._sampler.snapshot()  # this session's window starts now, not at the last trial's end

    def metrics(self) -> dict[str, float | str]:
        return {**self._sampler.snapshot(), **self._extra}
