"""The embedded PostgreSQL: idempotent start, stop, and clear errors for what goes wrong."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from costudy_pipelines.lib.settings import costudy_home
from costudy_pipelines_tests.harness import free_port


def local_url(port: int, password: str) -> str:
    return URL.create(
        "postgresql", "postgres", password, "127.0.0.1", port, "postgres"
    ).render_as_string(hide_password=False)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A folder the server's unprivileged user can reach.

    pytest keeps its own temp root at mode 0700 (and resets it as each xdist worker starts),
    which the `pgserver` service user cannot traverse when the tests run as root.
    """
    folder = costudy_home() / "scratch" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def scratch_server(tmp_path: Path):
    server = EmbeddedPostgres(tmp_path / "pgdata", free_port())
    yield server
    server.stop()


def test_start_is_idempotent_and_serves_real_postgres(scratch_server: EmbeddedPostgres) -> None:
    first = scratch_server.start()
    second = scratch_server.start()
    assert first.running and second.running
    assert first.pid == second.pid, "a second start must reuse the running server"
    assert first.port == scratch_server.port

    assert scratch_server.ensure_databases(["alpha", "beta"]) == ["alpha", "beta"]
    assert scratch_server.ensure_databases(["alpha", "beta"]) == []
    with psycopg.connect(scratch_server.server_url("alpha")) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == "alpha"


def test_data_survives_stop_and_start(scratch_server: EmbeddedPostgres) -> None:
    scratch_server.start()
    with psycopg.connect(scratch_server.server_url(), autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('still here')")
    assert scratch_server.stop() is True
    assert scratch_server.status().running is False
    assert scratch_server.stop() is False

    scratch_server.start()
    with psycopg.connect(scratch_server.server_url()) as conn:
        assert conn.execute("select v from kept").fetchone()[0] == "still here"


def test_port_taken_by_another_process_names_the_variable(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = EmbeddedPostgres(tmp_path / "pgdata", port)
        with pytest.raises(EmbeddedPostgresError, match=rf"port {port}.*COSTUDY_PG_PORT"):
            server.start()


def test_folder_that_is_not_a_data_directory_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("not postgres")
    with pytest.raises(EmbeddedPostgresError, match="not a PostgreSQL data directory"):
        EmbeddedPostgres(data_dir, free_port()).start()


def test_restart_after_a_crash_recovers(scratch_server: EmbeddedPostgres) -> None:
    pid = scratch_server.start().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while scratch_server.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    stale_pid_file = scratch_server.data_dir / "postmaster.pid"
    assert stale_pid_file.exists(), "the crash leaves a stale pid file"

    restarted = scratch_server.start()
    assert restarted.running and restarted.pid != pid
    pg.check_connection(scratch_server.server_url(), source="test")


def test_wrong_password_is_one_clear_sentence_without_the_password(tmp_path: Path) -> None:
    right, wrong = secrets.token_hex(8), secrets.token_hex(8)
    password_file = tmp_path / "pw"
    password_file.write_text(right)
    server = EmbeddedPostgres(tmp_path / "pgdata", free_port(), auth="scram-sha-256")
    try:
        server.start(password_file=password_file)
        url = local_url(server.port, wrong)
        with pytest.raises(pg.DatabaseConfigError) as caught:
            pg.check_connection(url, source="WAREHOUSE_DB_URL")
        message = str(caught.value)
        assert "WAREHOUSE_DB_URL" in message and "credentials" in message
        assert wrong not in message and "***" in message

        good = local_url(server.port, right)
        assert pg.check_connection(good, source="WAREHOUSE_DB_URL").startswith("16")
    finally:
        server.stop()
