"""The sweep driver's watchdog: stop a sweep that can no longer make progress.

A sweep *stalls* when, for ``search.stall_timeout_s`` seconds, no trial has reported a result
**and** no alive Ray node with CPUs answers. The second half is what tells a stall from a
slow epoch: a node counts as answering when Ray's node table lists it alive with CPUs and a
zero-CPU probe task pinned to it returns within the probe timeout. The probe matters because a
frozen raylet (a swapping laptop, SIGSTOP) still looks alive in the node table until Ray's own
health check gives up, which :mod:`medxfer.cluster_config` makes deliberately slow; a node that
Ray has already marked dead (what "Cluster resources not detected" means) counts as not
answering at once.

:class:`StallCallback` runs in the Tune driver loop. On a stall it tags the sweep's parent run
``medxfer.status=stalled`` and interrupts ``Tuner.fit()`` the way Ctrl-C does (Tune's SIGUSR1
handler): Tune saves the experiment state one last time and returns, so ``--resume`` restores
every unfinished trial. The tag is how :func:`medxfer.tune.sweep.run_sweep` learns of the stall
(it also works when the Tune loop runs on a cluster, under Ray Client).

The node table is read every few seconds; probes start only after a quiet spell (a quarter of the
timeout), so a sweep whose trials report sends none. A stall is declared once both conditions
have held for the whole timeout, counted from the first probe that went unanswered, so a frozen
node is detected after up to about 1.25 timeouts, a node Ray marked dead after one.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ray.tune import Callback

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_S = 300.0


def probe_timeout(stall_timeout_s: float) -> float:
    """How long a node may take to run a zero-CPU probe: a tenth of the stall timeout, within
    [5, 60] s (a busy laptop starts a worker process in a few seconds)."""
    return min(max(stall_timeout_s / 10.0, 5.0), 60.0)


@dataclass
class StallWatch:
    """The stall rule on plain timestamps (seconds, monotonic); no Ray.

    ``last_result``: when a trial last reported (or the watch started). ``no_capacity_since``:
    since when no node answers (None while one does).
    """

    timeout_s: float
    last_result: float
    no_capacity_since: Optional[float] = None

    def result(self, now: float) -> None:
        self.last_result = now

    def capacity(self, ok: bool, since: float) -> None:
        """Record a look at the cluster: ``ok`` = some node answers. ``since``: for a failed
        look, when the cluster was last seen able (the unanswered probe's start)."""
        if ok:
            self.no_capacity_since = None
        elif self.no_capacity_since is None:
            self.no_capacity_since = since

    def quiet(self, now: float) -> float:
        return now - self.last_result

    def stalled(self, now: float) -> bool:
        return (self.quiet(now) >= self.timeout_s and self.no_capacity_since is not None
                and now - self.no_capacity_since >= self.timeout_s)


@dataclass
class _Probe:
    ref: object
    sent: float


@dataclass
class NodeProbe:
    """Which alive Ray nodes with CPUs answer a zero-CPU task pinned to them (one probe per node
    in flight; a node whose probe is older than ``timeout_s`` is not answering)."""

    timeout_s: float
    clock: Callable[[], float] = time.monotonic
    _inflight: dict[str, _Probe] = field(default_factory=dict)
    _answered: dict[str, float] = field(default_factory=dict)

    def look(self, probe: bool = True) -> tuple[bool, float]:
        """``(ok, since)``: ok when some alive CPU node answers (without ``probe``: when the node
        table lists one); else ``since`` = the earliest moment from which none has answered."""
        import ray

        now = self.clock()
        nodes = [n["NodeID"] for n in ray.nodes()
                 if n.get("Alive") and float((n.get("Resources") or {}).get("CPU", 0)) > 0]
        if not nodes:
            return False, now
        if not probe:
            self._inflight.clear()
            return True, now
        since = []
        for node in nodes:
            ok, t = self._node(node, now)
            if ok:
                return True, now
            since.append(t)
        return False, max(since)

    def _node(self, node: str, now: float) -> tuple[bool, float]:
        import ray

        probe = self._inflight.get(node)
        if probe is not None:
            done, _ = ray.wait([probe.ref], timeout=0)
            if done:
                del self._inflight[node]
                try:
                    ray.get(done[0], timeout=0)
                    self._answered[node] = now
                except Exception:  # the node died under the probe
                    return False, probe.sent
            elif now - probe.sent > self.timeout_s:
                return False, probe.sent
        if node not in self._inflight and now - self._answered.get(node, -1e18) >= self.timeout_s:
            self._inflight[node] = _Probe(_probe_task(node), now)
        return True, now


def _probe_task(node_id: str):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return _ping.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node_id, soft=False)).remote()


def _ping_fn() -> int:
    return 1


class _LazyRemote:
    """``ray.remote`` applied at first use, so importing this module does not need Ray up."""

    def __init__(self, fn):
        self.fn, self._remote = fn, None

    def options(self, **kw):
        if self._remote is None:
            import ray

            self._remote = ray.remote(num_cpus=0, max_retries=0)(self.fn)
        return self._remote.options(**kw)


_ping = _LazyRemote(_ping_fn)


class StallCallback(Callback):
    """Tune callback applying :class:`StallWatch` (see the module docstring).

    Args:
        timeout_s: ``search.stall_timeout_s``.
        on_stall: called once with the reason (one line) before the interrupt; the sweep tags
            its parent run there. Must be picklable (Tune stores callbacks in ``tuner.pkl``).
        look_every_s: how often the driver loop looks at the cluster during a quiet spell.
    """

    def __init__(self, timeout_s: float, on_stall: Callable[[str], None],
                 look_every_s: float = 2.0):
        self.timeout_s = float(timeout_s)
        self.on_stall = on_stall
        self.look_every_s = look_every_s
        self._reset()

    def _reset(self) -> None:
        self._watch: StallWatch | None = None
        self._probe: NodeProbe | None = None
        self._last_look = 0.0
        self.reason: str | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_watch=None, _probe=None, _last_look=0.0, reason=None)
        return state

    def setup(self, **info):
        self._reset()

    def _ensure(self, now: float) -> StallWatch:
        if self._watch is None:
            self._watch = StallWatch(self.timeout_s, last_result=now)
            self._probe = NodeProbe(probe_timeout(self.timeout_s))
        return self._watch

    def on_trial_result(self, iteration, trials, trial, result, **info):
        now = time.monotonic()
        self._ensure(now).result(now)

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        watch = self._ensure(now)
        if self.reason is not None or now - self._last_look < self.look_every_s:
            return
        self._last_look = now
        # Probing only in a quiet spell: a sweep whose trials report sends no probe tasks.
        ok, since = self._probe.look(probe=watch.quiet(now) >= self.timeout_s / 4)
        watch.capacity(ok, since)
        if watch.stalled(now):
            self.reason = (f"no trial reported a result for {watch.quiet(now):.0f} s and no "
                           f"alive Ray node with CPUs answered for "
                           f"{now - watch.no_capacity_since:.0f} s "
                           f"(search.stall_timeout_s: {self.timeout_s:g})")
            log.error("sweep stalled: %s; stopping it", self.reason)
            self.on_stall(self.reason)
            interrupt_tune()


def interrupt_tune() -> None:
    """End ``Tuner.fit()`` as Ctrl-C does: Tune's SIGUSR1 handler sets its interrupted flag,
    saves the experiment state and returns. Where Tune installed no handler (``fit`` off the
    main thread), raise instead: Tune ends the loop and re-raises."""
    handler = signal.getsignal(signal.SIGUSR1)
    if callable(handler):
        tune_log = logging.getLogger("ray.tune.tune")
        tune_log.addFilter(_NotACtrlC(tune_log))
        signal.raise_signal(signal.SIGUSR1)
    else:
        raise SweepStalledInLoop("sweep stalled (see medxfer.status on the parent run)")


class _NotACtrlC(logging.Filter):
    """Drops Tune's lines for the interrupt (it calls it a Ctrl-C and suggests
    ``Tuner.restore``): the sweep reports the stall and its ``--resume`` command itself. Removes
    itself after Tune's last such line."""

    FIRST, LAST = "Stop signal received", "Experiment has been interrupted"

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith(self.LAST):
            self.logger.removeFilter(self)
        return not msg.startswith((self.FIRST, self.LAST))


class SweepStalledInLoop(RuntimeError):
    """Raised in the Tune loop when it cannot be interrupted by signal."""
