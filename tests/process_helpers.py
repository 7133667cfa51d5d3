"""Tests that start processes stop every one of them by PID (never by name, never `ray stop`)."""

from __future__ import annotations

import signal
import subprocess

import psutil


class Family:
    """Every process ``proc`` started, remembered while it runs (they can outlive it).

    Call :meth:`poll` often while ``proc`` runs; :meth:`alive` lists those still running,
    :meth:`kill` stops them all (SIGCONT first, for frozen ones).
    """

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.seen = proc, set()

    def poll(self) -> None:
        try:
            self.seen.update(psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def named(self, name: str):
        for p in list(self.seen):
            try:
                if p.name() == name:
                    return p
            except psutil.NoSuchProcess:
                continue
        return None

    def alive(self) -> list:
        out = []
        for p in self.seen:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                continue
        return out

    def kill(self) -> None:
        for p in self.alive():
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        psutil.wait_procs(list(self.seen), timeout=30)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the driver, then every process it had started (raylet, GCS, workers)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
