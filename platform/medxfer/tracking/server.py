"""A local ``mlflow server`` for tests, demos and single-machine clusters, that stops by itself.

``MlflowServer`` starts ``mlflow server`` as a subprocess bound to 127.0.0.1, waits for
``/health`` and exposes ``.uri``. It stops

* on ``stop()`` / leaving the ``with`` block (SIGTERM to its process group, SIGKILL after a grace
  period), and
* on a signal to the starter, with :meth:`MlflowServer.serve_until_signal` (``medxfer ui``),
* when the process that started it dies, however it dies (``kill -9`` of a test run included):
  the server runs in its own process group, and a tiny watchdog process holds the read end of a
  pipe whose write end only the starting process holds. When that process exits, the pipe
  reaches EOF and the watchdog kills the server's process group. (Linux's
  ``PR_SET_PDEATHSIG`` alone would not do: it covers only the direct child, and
  ``mlflow server`` runs uvicorn in a grandchild.)

Facts from ``RAY-MLFLOW-NOTES.md``: the server takes 12-23 s to answer ``/health`` under load
on this machine, ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` keeps it at ~0.5 GB instead of
~1.6 GB (no job-runner processes), and a brand-new sqlite store opened by several processes at
once races while creating its tables, so the store is created once here before the server starts.

For a shared tracking server on a cluster (PostgreSQL, object-store artifacts, ``--host 0.0.0.0
--allowed-hosts``) see ``clusters/README.md``; this class deliberately binds loopback only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from medxfer.tracking.process_group import PipeWatchdog, kill_group
from medxfer.tracking.uri import absolute_uri

DEFAULT_STARTUP_TIMEOUT_S = 120.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

class MlflowServerError(RuntimeError):
    """The server did not come up (the message carries its log tail)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (``"already in use"``, ...), or None when it can.

    Binds the way the server will (``SO_REUSEADDR``, as uvicorn does), so a port that only has
    connections in TIME_WAIT counts as free.
    """
    if not 1 <= port <= 65535:
        return "not a TCP port (expected 1-65535)"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except PermissionError:
            return "not permitted (a port below 1024 needs root)"
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use"
            return exc.strerror or str(exc)
    return None


#: The MLflow 3.17 UI picks its view from the ``workflowType`` URL parameter (else the choice
#: saved by its "GenAI | Model training" switch, default GenAI) and opens an experiment on a
#: traces overview; ``/runs`` with ``machine_learning`` opens the run table. The medxfer app
#: (:mod:`medxfer.tracking.server_app`) makes that the default, so bare experiment links work
#: there too; the printed links carry it for stock servers.
RUNS_VIEW = "runs?workflowType=machine_learning"


def experiment_links(tracking_uri: str, base_url: str, limit: int = 20) -> list[tuple[str, str]]:
    """``(name, URL)`` of the store's medxfer experiments (newest first, at most ``limit``),
    each URL opening the experiment's run table in the MLflow UI at ``base_url``."""
    from mlflow import MlflowClient

    from medxfer.tracking.schema import EXPERIMENT_PREFIXES

    exps = MlflowClient(tracking_uri=tracking_uri).search_experiments(
        max_results=1000, order_by=["last_update_time DESC"])
    ours = [e for e in exps if e.name.split("/", 1)[0] in EXPERIMENT_PREFIXES]
    return [(e.name, f"{base_url}/#/experiments/{e.experiment_id}/{RUNS_VIEW}")
            for e in ours[:limit]]


class _Stop(BaseException):
    """A stop signal arrived (raised by the handler of :meth:`MlflowServer.serve_until_signal`)."""


def _create_store(backend_store_uri: str) -> None:
    """Create the store's tables once, in this process, before any server worker opens it."""
    from medxfer.tracking.store import client

    # client() creates a sqlite file's directory; any call that opens the SQLAlchemy store
    # runs its migrations (creates every table).
    client(backend_store_uri).search_experiments(max_results=1)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a free port; a context manager.

    >>> with MlflowServer("sqlite:////tmp/s.db", "/tmp/art") as server:  # doctest: +SKIP
    ...     mlflow.set_tracking_uri(server.uri)
    """

    def __init__(self, backend_store_uri: str, artifact_root: str | os.PathLike, *,
                 host: str = "127.0.0.1", port: int | None = None, workers: int = 1,
                 startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S, stop_grace: float = 10.0,
                 log_path: str | os.PathLike | None = None, extra_args: list[str] | None = None):
        if host not in _LOOPBACK:
            raise ValueError(f"MlflowServer binds loopback only (got host={host!r}); a server "
                             "for a cluster is run as described in clusters/README.md")
        self.backend_store_uri = absolute_uri(backend_store_uri) if (
            backend_store_uri.startswith("sqlite:") or "://" not in backend_store_uri
        ) else backend_store_uri
        self.artifact_root = str(artifact_root)
        if "://" not in self.artifact_root:
            self.artifact_root = str(Path(self.artifact_root).resolve())
        self.host = host
        self.port = port
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.extra_args = list(extra_args or [])
        self._log_path = Path(log_path) if log_path else None
        self._own_log = False
        self.proc: subprocess.Popen | None = None
        self.watchdog: PipeWatchdog | None = None

    # ------------------------------------------------------------------ public API
    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pids(self) -> list[int]:
        """PIDs this object started (server group leader, watchdog)."""
        pids = [self.proc.pid if self.proc is not None else None,
                self.watchdog.pid if self.watchdog is not None else None]
        return [p for p in pids if p is not None]

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self) -> MlflowServer:
        if self.proc is not None:
            raise RuntimeError("server already started")
        _create_store(self.backend_store_uri)
        if self.port is None:
            self.port = free_port(self.host)
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="mlflow-server-", suffix=".log")
            os.close(fd)
            self._log_path, self._own_log = Path(name), True
        if "://" not in self.artifact_root:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.pop("MLFLOW_TRACKING_URI", None)  # the server's store is the one given here
        cmd = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", self.backend_store_uri,
               "--default-artifact-root", self.artifact_root,
               "--host", self.host, "--port", str(self.port),
               "--workers", str(self.workers), *self.extra_args]
        with open(self._log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        try:
            self.watchdog = PipeWatchdog(self.proc.pid, self.stop_grace)
            self._wait_healthy()
        except BaseException:
            self._own_log = False  # keep the log the error message points to
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server's process group and the watchdog; idempotent."""
        if self.proc is not None:
            kill_group(self.proc, self.stop_grace)
        if self.watchdog is not None:
            self.watchdog.release()  # it sees EOF, finds nothing left, exits
        if self._own_log and self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    def serve_until_signal(self, on_ready=None,
                           signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> int:
        """Start, call ``on_ready()``, and serve until one of ``signals`` arrives or the server
        exits; then stop it (the signal is passed on as the server group's SIGTERM). Returns 0
        after a signal. Main thread only (Python delivers signals there).

        Raises:
            MlflowServerError: the server did not come up, or exited by itself (log tail).
        """
        def handler(signum, frame):
            raise _Stop(signum)

        previous = {sig: signal.signal(sig, handler) for sig in signals}
        try:
            try:
                self.start()
                if on_ready is not None:
                    on_ready()
                code = self.proc.wait()
                raise MlflowServerError(f"mlflow server exited with code {code}; log "
                                        f"{self._log_path}:\n{self.log_tail()}")
            except _Stop:
                return 0
            finally:
                for sig in signals:  # a second Ctrl-C must not cut the clean-up short
                    signal.signal(sig, signal.SIG_IGN)
                self.stop()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.uri}/health"
        while True:
            code = self.proc.poll()
            if code is not None:
                raise MlflowServerError(
                    f"mlflow server exited with code {code} before answering {url}; "
                    f"log {self._log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise MlflowServerError(
                    f"mlflow server did not answer {url} within {self.startup_timeout:.0f} s; "
                    f"log {self._log_path}:\n{self.log_tail()}")
            time.sleep(0.25)
