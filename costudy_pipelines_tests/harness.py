"""Real PostgreSQL for the tests: the embedded server by default, or the server a variable names.

COSTUDY_TEST_PG_URL names an existing server (any database on it; the tests create their own
databases there). Unset, the tests start an embedded server of their own, beside the demo's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgres
from costudy_pipelines.lib.settings import costudy_home

TEST_URL_VAR = "COSTUDY_TEST_PG_URL"
TEST_PORT_VAR = "COSTUDY_TEST_PG_PORT"
DEFAULT_TEST_PORT = 54339


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise across pytest-xdist workers (each has its own session fixtures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# How long a test waits for a subprocess, a worker or a run before calling it hung. A guard
# against a hang, never a bound on speed: what takes a minute on a quiet 2-core machine took
# 8 minutes beside `stress-ng --cpu 4` and other jobs (load 15-19), so the guard is generous and
# pytest's own per-test timeout (pyproject.toml) sits above a test's waits added up.
HANG_S = 1200


def embedded_test_server() -> EmbeddedPostgres:
    port = int(os.environ.get(TEST_PORT_VAR) or DEFAULT_TEST_PORT)
    return EmbeddedPostgres(costudy_home() / "test-pgdata", port, port_var=TEST_PORT_VAR)


def test_server_url() -> str:
    """The admin URL of the server the tests use; starts the embedded one when none is named."""
    configured = os.environ.get(TEST_URL_VAR)
    if configured:
        pg.check_connection(configured, source=TEST_URL_VAR)
        return pg.url_for_database(configured, "postgres")
    server = embedded_test_server()
    with file_lock(costudy_home() / "test-pgdata.lock"):
        server.start()
    return server.server_url()


class DatabaseFactory:
    """Creates throwaway databases on the test server, copying templates so setup is paid once."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def template(self, name: str, build: Callable[[str], None]) -> str:
        """A template database, built once per server and reused by every worker and run.

        `name` must change whenever what `build` produces changes (include a content hash).
        """
        with file_lock(costudy_home() / "locks" / f"{name}.lock"):
            with pg.admin_connection(self.server_url, source=TEST_URL_VAR) as conn:
                if pg.database_exists(conn, name):
                    return name
                building = f"{name}_building"
                pg.drop_database(conn, building)
                pg.create_database(conn, building)
            build(pg.url_for_database(self.server_url, building))
            with pg.admin_connection(self.server_url, source=TEST_URL_VAR) as conn:
                conn.execute(f'alter database "{building}" rename to "{name}"')
        return name

    def create(self, template: str | None = None) -> str:
        """A new empty (or template-copied) database; returns its URL."""
        name = f"t_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:10]}"
        with pg.admin_connection(self.server_url, source=TEST_URL_VAR) as conn:
            pg.create_database(conn, name, template=template)
        self.created.append(name)
        return pg.url_for_database(self.server_url, name)

    def drop_all(self) -> None:
        with pg.admin_connection(self.server_url, source=TEST_URL_VAR) as conn:
            for name in self.created:
                pg.drop_database(conn, name)
        self.created.clear()


def project_environment(factory: DatabaseFactory, home: Path) -> dict[str, str]:
    """A process environment where every database variable names a fresh test database.

    With every variable set, nothing starts the embedded server: the commands under test use
    exactly these databases, and COSTUDY_HOME keeps their local files out of the work tree.
    """
    from costudy_pipelines.lib.settings import DATABASES

    env = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_")}
    for spec in DATABASES:
        env[spec.env_var] = factory.create()
    env["COSTUDY_HOME"] = str(home)
    env["COSTUDY_ARTIFACTS"] = str(home / "dagster")
    # Keep the repository's .env out of it: the sandbox writes its block here instead. (Run
    # Dagster's CLI with cwd=home too: it loads ./.env *over* the process environment.)
    env["COSTUDY_ENV_FILE"] = str(home / ".env")
    home.mkdir(parents=True, exist_ok=True)
    return env


if __name__ == "__main__":
    # `python -m costudy_pipelines_tests.harness stop`: CI's cleanup of the tests' server.
    import sys

    if sys.argv[1:] == ["stop"]:
        embedded_test_server().stop()


@contextmanager
def server_folder(prefix: str = "costudy-test-server-") -> Iterator[Path]:
    """A folder for an embedded server's data outside pytest's tmp tree, removed afterwards:
    pytest makes its pytest-of-<user> folder private again whenever a session starts, and a
    server run as its own service user there loses its data directory mid-run (PANIC: could
    not open pg_control) and cannot be stopped."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
