"""A throwaway local PostgreSQL server (tests, benchmarks, a single machine) that stops by itself.

``PostgresServer`` runs Debian's ``postgresql`` binaries (``initdb`` + ``postgres``) on a Unix
socket in a temporary folder (no TCP port), creates one database and exposes its SQLAlchemy
URI ``postgresql+psycopg://postgres@/<db>?host=<socket dir>``, the form medxfer, MLflow and
``mlflow server`` all take. It stops on ``stop()`` / leaving the ``with`` block (fast shutdown,
then SIGKILL) and, like :class:`~medxfer.tracking.server.MlflowServer`, when the process that
started it dies however it dies (the same pipe watchdog), and its folder is deleted.

``initdb`` refuses to run as root (CI runs as root): then the cluster is created and run as the
``postgres`` system user (``runuser -u postgres``), in a folder that user owns. Without
``durable``, ``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off (a test server,
faster on a loaded machine; data survives a clean stop but not a power cut).

For a real server (managed PostgreSQL, backups) see ``clusters/README.md``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from medxfer.tracking.process_group import PipeWatchdog, kill_group

SUPERUSER = "postgres"
_SERVICE_USER = "postgres"  # the Debian package's system user


class PostgresServerError(RuntimeError):
    """The server could not be set up (the message carries the tool's output or log tail)."""


def find_binary(name: str) -> str:
    """``name`` (initdb, postgres, ...) on PATH, else in Debian's ``/usr/lib/postgresql/*/bin``
    (the package does not put them on PATH), newest version first."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                      reverse=True)
    for bindir in versions:
        if (bindir / name).is_file():
            return str(bindir / name)
    raise PostgresServerError(f"PostgreSQL's {name!r} not found on PATH or in "
                              "/usr/lib/postgresql/*/bin; install Debian's postgresql package "
                              "(apt-get install -y postgresql; `make test` does)")


def available() -> bool:
    """Whether the PostgreSQL server binaries are installed."""
    try:
        find_binary("initdb")
        find_binary("postgres")
    except PostgresServerError:
        return False
    return True


class PostgresServer:
    """A local PostgreSQL server on a socket directory with one database; a context manager.

    >>> with PostgresServer() as pg:  # doctest: +SKIP
    ...     import_benchmark(directory, tracking_uri=pg.uri)
    """

    def __init__(self, database: str = "mlflow", *, durable: bool = False,
                 parent: str | os.PathLike | None = None, startup_timeout: float = 120.0,
                 stop_grace: float = 15.0):
        self.database = database
        self.durable = durable
        self.parent = parent
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.base: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.watchdog: PipeWatchdog | None = None

    # ------------------------------------------------------------------ public API
    @property
    def socket_dir(self) -> Path:
        if self.base is None:
            raise RuntimeError("server not started")
        return self.base / "sock"

    def uri_for(self, database: str) -> str:
        """SQLAlchemy URI of ``database`` on this server (psycopg 3 driver, socket dir)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    @property
    def uri(self) -> str:
        return self.uri_for(self.database)

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; returns its URI."""
        with self._connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri_for(name)

    def start(self) -> PostgresServer:
        if self.proc is not None:
            raise RuntimeError("server already started")
        self.base = Path(tempfile.mkdtemp(prefix="medxfer-pg-", dir=self.parent))
        try:
            self.socket_dir.mkdir()
            self._as_service_user_owns(self.base)
            self._initdb()
            self._start_postgres()
            self._wait_ready()
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), SIGKILL after the grace period;
        then the folder is deleted. Idempotent."""
        if self.proc is not None:  # SIGINT: PostgreSQL's fast shutdown
            kill_group(self.proc, self.stop_grace, first=signal.SIGINT)
            self.proc = None
        if self.watchdog is not None:
            self.watchdog.release()
            self.watchdog = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        log = self.base / "postgres.log" if self.base else None
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _as_service_user_owns(self, path: Path) -> None:
        """As root, hand the folder to the ``postgres`` user (initdb refuses root)."""
        if not self._as_root():
            return
        import pwd

        try:
            pw = pwd.getpwnam(_SERVICE_USER)
        except KeyError:
            raise PostgresServerError(
                f"running as root, and there is no {_SERVICE_USER!r} user to run PostgreSQL "
                "as (initdb refuses root); install Debian's postgresql package") from None
        for p in [path, *path.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", _SERVICE_USER, "--", *args] if self._as_root() else list(args)

    def _initdb(self) -> None:
        cmd = self._cmd(find_binary("initdb"), "-D", str(self.base / "data"), "-U", SUPERUSER,
                        "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                        "--no-instructions")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PostgresServerError(f"initdb exited {proc.returncode}: "
                                      f"{(proc.stderr or proc.stdout)[-2000:]}")

    def _start_postgres(self) -> None:
        settings = {"listen_addresses": "", "unix_socket_directories": str(self.socket_dir),
                    "max_connections": "100", "shared_buffers": "128MB"}
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        args = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
        cmd = self._cmd(find_binary("postgres"), "-D", str(self.base / "data"), *args)
        log = self.base / "postgres.log"
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        # SIGTERM from the watchdog is a "smart" shutdown; its SIGKILL follows the grace
        self.watchdog = PipeWatchdog(self.proc.pid, self.stop_grace)

    def _connect(self, database: str):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), dbname=database, user=SUPERUSER,
                               autocommit=True, connect_timeout=5)

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise PostgresServerError(f"postgres exited with code {code} while starting; "
                                          f"log:\n{self.log_tail()}")
            try:
                with self._connect("postgres"):
                    return
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise PostgresServerError(f"postgres did not accept connections within "
                                          f"{self.startup_timeout:.0f} s; log:\n{self.log_tail()}")
            time.sleep(0.2)
