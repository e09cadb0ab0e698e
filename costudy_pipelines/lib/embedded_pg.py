"""The embedded PostgreSQL: a real server from the `pgserver` wheel's binaries, run by the project.

pgserver's own wrapper listens on a Unix socket only and stops the server when the Python
process that started it exits; the project needs a server that outlives the command that
started it (`costudy db up`, then `dagster dev`, then the tests) and answers on
127.0.0.1:PORT like any other server. So we drive the same binaries with pg_ctl ourselves.
"""

from __future__ import annotations

import os
import socket
import subprocess
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.settings import EMBEDDED_PORT_VAR, HOME_VAR

SERVICE_USER = "pgserver"  # postgres refuses to run as root; pgserver's convention
SERVICE_USER_LOCK = "/tmp/costudy-pgserver-user.lock"  # machine-wide, like the user itself
SUPERUSER = "postgres"
# How long pg_ctl waits for the server to start or stop: seconds on a quiet machine, minutes on
# a 2-core one beside a CPU hog (a stop's checkpoint included); only a hang should exceed it.
PG_CTL_WAIT_S = 600


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot start or stop; the message names the path or port and the fix."""


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path


def _ensure_service_user() -> None:
    """Create the service user once, even when several processes start servers at once (test
    workers): concurrent `useradd`s fail or leave a half-written passwd file behind."""
    import fcntl

    from pgserver.utils import ensure_user_exists

    with open(SERVICE_USER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists(SERVICE_USER)


def _service_user() -> str | None:
    """The user subprocesses run as: when root, the service user (dropping privileges the way
    pgserver does); otherwise None, the caller itself."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    _ensure_service_user()
    return SERVICE_USER


def _prepare_root_permissions(data_dir: Path) -> None:
    if os.name != "posix" or os.geteuid() != 0:
        return
    import pwd
    import stat

    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    _ensure_service_user()  # a fresh machine has none yet
    entry = pwd.getpwnam(SERVICE_USER)
    ensure_prefix_permissions(data_dir)
    bin_path = postgres_bin_path()
    ensure_prefix_permissions(bin_path)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path.parent / "lib", readable)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _port_accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@cache
def postgres_bin_path() -> Path:
    """The pgserver wheel's bin folder. pgserver (and the platformdirs it asks for a runtime
    dir we never use) is imported here, when a server or client program is wanted, not by
    every process that imports this module (a run's start: ~0.1 s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def binary(name: str) -> Path:
    """A PostgreSQL client or server program shipped in the pgserver wheel (psql, pg_dump, …)."""
    return postgres_bin_path() / name


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` (no Unix socket)."""

    def __init__(
        self, data_dir: Path, port: int, *, auth: str = "trust", port_var: str = EMBEDDED_PORT_VAR
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.auth = auth
        self.port_var = port_var  # the variable an operator changes to pick another port
        self.log_file = self.data_dir / "server.log"

    # -- state -----------------------------------------------------------------------------
    def _postmaster(self) -> tuple[int, int | None] | None:
        """(pid, port) from postmaster.pid when the process it names is a live postgres."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        try:
            pid = int(lines[0])
            port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
        except (ValueError, IndexError):
            return None
        import psutil

        try:
            process = psutil.Process(pid)
            if not process.is_running() or "postgres" not in process.name():
                return None
        except psutil.Error:
            return None
        return pid, port

    def status(self) -> EmbeddedStatus:
        running = self._postmaster()
        if running is None:
            return EmbeddedStatus(False, None, None, self.data_dir)
        return EmbeddedStatus(True, running[0], running[1], self.data_dir)

    def server_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------
    def _initdb(self, password_file: Path | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _prepare_root_permissions(self.data_dir)
        args = [
            str(binary("initdb")),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            f"--auth-local={self.auth}",
            f"--auth-host={self.auth}",
        ]
        if password_file is not None:
            args.append(f"--pwfile={password_file}")
        self._run(args, what=f"initialise the data directory {self.data_dir}")

    def _run(self, args: list[str], *, what: str) -> None:
        # Every time: the service user must reach the data directory, and a parent's mode can
        # change under a running server (pytest makes its pytest-of-<user> folder private
        # again whenever a session starts, and `pg_ctl stop` then failed with Permission denied)
        _prepare_root_permissions(self.data_dir)
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=PG_CTL_WAIT_S + 30, user=_service_user()
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise EmbeddedPostgresError(
                f"could not {what}: {' | '.join(detail)}" + self._log_tail()
            )

    def _log_tail(self) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return "\nlast lines of " + str(self.log_file) + ":\n  " + "\n  ".join(tail)

    def start(self, *, password_file: Path | None = None) -> EmbeddedStatus:
        """Start the server, or reuse the one already running on this data directory."""
        initialised = (self.data_dir / "PG_VERSION").exists()
        if not initialised and self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} exists but is not a PostgreSQL data directory: "
                f"move it away or point {HOME_VAR} at another folder"
            )
        if not initialised:
            self._initdb(password_file)

        current = self.status()
        if current.running:
            if current.port != self.port:
                raise EmbeddedPostgresError(
                    f"the embedded server in {self.data_dir} already runs on port {current.port}, "
                    f"but {self.port_var} asks for {self.port}: run `costudy db down` first"
                )
            return current

        if _port_accepts_connections(self.port):
            raise EmbeddedPostgresError(
                f"port {self.port} on 127.0.0.1 is already taken by another process: "
                f"set {self.port_var} to a free port"
            )
        options = " ".join(
            [
                "-h 127.0.0.1",
                f"-p {self.port}",
                "-c unix_socket_directories=''",
                "-c max_connections=300",
                # A local development server: trade crash durability of the last commits
                # for speed. The data directory still survives a clean stop.
                "-c synchronous_commit=off",
            ]
        )
        self._run(
            [
                str(binary("pg_ctl")),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(PG_CTL_WAIT_S),
                "start",
            ],
            what=f"start PostgreSQL on 127.0.0.1:{self.port} from {self.data_dir}",
        )
        started = self.status()
        if not started.running:
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.data_dir} did not stay up" + self._log_tail()
            )
        return started

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.status().running:
            return False
        wait = ["-w", "-t", str(PG_CTL_WAIT_S)]
        self._run(
            [str(binary("pg_ctl")), "-D", str(self.data_dir), "-m", "fast", *wait, "stop"],
            what=f"stop PostgreSQL in {self.data_dir}",
        )
        return True

    def ensure_databases(self, names: list[str]) -> list[str]:
        """Create the databases that do not exist yet; return the ones created."""
        created = []
        with pg.admin_connection(self.server_url(), source="the embedded server") as conn:
            for name in names:
                if not pg.database_exists(conn, name):
                    pg.create_database(conn, name)
                    created.append(name)
        return created
