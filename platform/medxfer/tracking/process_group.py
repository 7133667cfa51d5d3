"""Server processes that stop with the process that started them.

A server (``mlflow server``, PostgreSQL) runs in its own process group. :func:`kill_group` stops
that group (a first signal, SIGKILL after a grace period), and :class:`PipeWatchdog` does it when
the starter dies however it dies (``kill -9`` of a test run included): a tiny watchdog process
holds the read end of a pipe whose write end only the starter holds; when the starter exits, the
pipe reaches EOF and the watchdog kills the group. (Linux's ``PR_SET_PDEATHSIG`` alone would
not do: it covers only the direct child, and ``mlflow server`` runs uvicorn in a grandchild.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

# Run as ``python -c``: block on stdin (the pipe); on EOF the starter is gone, so kill the
# server's process group (SIGTERM, then SIGKILL after a grace period) and exit. SIGINT/SIGHUP are
# ignored so that a Ctrl-C in the starter's terminal cannot kill the watchdog before it cleans up.
_WATCHDOG = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
if alive():
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a process."""
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_group(proc: subprocess.Popen, grace: float, first: int = signal.SIGTERM) -> None:
    """Stop the process group ``proc`` leads (``start_new_session=True``): ``first``, then
    SIGKILL if the group outlives ``grace`` seconds; reaps ``proc``."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    if group_alive(pgid):
        with contextlib.suppress(OSError):
            os.killpg(pgid, first)
        deadline = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        if group_alive(pgid):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


class PipeWatchdog:
    """Kills process group ``pgid`` (SIGTERM, SIGKILL after ``grace``) once this process is
    gone or :meth:`release` is called after the group was stopped."""

    def __init__(self, pgid: int, grace: float):
        self.grace = grace
        r, w = os.pipe()  # both ends non-inheritable; only the watchdog gets r (as stdin)
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(pgid), str(grace)],
                stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._pipe_w: int | None = w

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def release(self) -> None:
        """Close the pipe (the watchdog sees EOF, kills what is left, exits) and reap it."""
        if self._pipe_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._pipe_w)
            self._pipe_w = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=self.grace + 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
