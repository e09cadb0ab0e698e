"""Two runners at once: exactly one applies; a runner that cannot get the lock says who has it."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import ApplyReport, LockTimeout, apply_pending
from costudy_pipelines.lib.migrations.lock import LOCK_KEY
from costudy_pipelines_tests.lib.migrations.support import history, table_exists, write_files

SLOW_FILES = {
    "001-first.sql": "create table first (id int);",
    "002-slow.sql": "select pg_sleep(0.5); create table slow (id int);",
    "003-last.sql": "insert into first values (3);",
}


def test_two_concurrent_appliers_apply_each_file_exactly_once(fresh_db_url: str, folder: Path):
    write_files(folder, SLOW_FILES)
    reports: list[ApplyReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            reports.append(apply_pending(fresh_db_url, folder, lock_timeout_s=10))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    applied = sorted(len(report.applied) for report in reports)
    assert applied == [0, 3]  # the loser waited for the lock, then found nothing pending
    assert history(fresh_db_url) == [("apply", 1), ("apply", 2), ("apply", 3)]


def test_runner_that_cannot_get_the_lock_times_out_naming_the_holder(
    fresh_db_url: str, folder: Path
):
    write_files(folder, SLOW_FILES)
    with psycopg.connect(
        pg.libpq_dsn(fresh_db_url, source="test"), autocommit=True, application_name="stuck-job"
    ) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        holder_pid = holder.info.backend_pid

        with pytest.raises(LockTimeout) as raised:
            apply_pending(fresh_db_url, folder, lock_timeout_s=0.3)

    message = str(raised.value)
    assert f"held by pid {holder_pid} (stuck-job" in message
    assert "waited 0.3s" in message
    assert not table_exists(fresh_db_url, "first")
