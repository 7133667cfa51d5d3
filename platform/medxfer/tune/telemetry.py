"""Per-trial hardware telemetry, sampled in the trial's own process.

A daemon thread samples this process every ``interval`` seconds: CPU % (psutil, of this process
and its children), RSS memory, and — when CUDA is available — GPU utilisation and memory
(``torch.cuda``; ``nvidia-smi`` for utilisation when torch cannot read it). :meth:`snapshot`
returns the aggregates since the last snapshot as ``system/*`` metrics, the counterparts of the
published benchmark's radT columns (``TOP - CPU Utilization``, ``TOP - Memory Usage GB``,
``SMI - GPU Util``, ``SMI - Mem Used``):

``system/cpu_percent`` (mean), ``system/cpu_percent_max``, ``system/memory_rss_mb`` (peak),
``system/gpu_utilization_percent`` (mean), ``system/gpu_memory_mb`` (peak), ``system/samples``.

:func:`attach` hooks the Tune session of this process so that every ``ray.tune.report`` made in
it (the fast path, or ``TuneReportCallback`` relaying a ``TorchTrainer``) carries the snapshot.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from typing import Callable, Optional

log = logging.getLogger(__name__)


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


class attach:
    """Context manager: sample this process and add ``system/*`` to every Tune report in it
    (plus the constant entries of ``extra``, e.g. the trial's Ray node id).

    Wraps the ``report`` method of this process's Tune session object (``ray.tune.report``
    and ``ray.train.report`` both go through it). If a future Ray moves the session, telemetry
    is skipped with a warning rather than failing the trial.
    """

    def __init__(self, interval: float = 1.0, extra: dict | None = None):
        self.interval = interval
        self.extra = dict(extra or {})  # constant entries added to every report (node id)
        self.sampler: Sampler | None = None
        self._session = None
        self._had_attr = False

    def __enter__(self) -> "attach":
        try:
            from ray.train._internal.session import get_session

            session = get_session()
        except Exception as exc:  # pragma: no cover
            log.warning("telemetry disabled: no Tune session (%s)", exc)
            return self
        if session is None:
            log.warning("telemetry disabled: not inside a Tune trial")
            return self
        self.sampler = Sampler(self.interval).start()
        original = session.report
        sampler = self.sampler
        extra = self.extra

        def report(metrics, checkpoint=None, **kw):
            return original({**metrics, **sampler.snapshot(), **extra}, checkpoint=checkpoint,
                            **kw)

        self._had_attr = "report" in vars(session)
        self._saved = vars(session).get("report")
        session.report = report
        self._session = session
        return self

    def __exit__(self, *exc) -> None:
        if self._session is not None:
            if self._had_attr:
                self._session.report = self._saved
            else:
                del self._session.report
        if self.sampler is not None:
            self.sampler.stop()
