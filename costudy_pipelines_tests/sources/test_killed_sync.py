"""A sync process killed while it loads (SIGKILL: no cleanup of any kind) leaves nothing
half-written, and the next run converges: every record once, the dead session marked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from costudy_pipelines.sandbox.seed import schema_sql
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.sources import sync_process
from costudy_pipelines_tests.sources.runs import run_assets

DAY = date(2024, 1, 2)
VOTES = 30_000  # two chunks of 20,000: about a second of loading
VOTERS = 10_000
LOADING = ("copy %", "with written as (%")  # the loader's statements, as pg_stat_activity shows
WAIT_S = 60


def seed_votes(url: str) -> None:
    """The website's schema and one busy day of votes; voters write their email in several
    cases, and one row in a thousand carries a quote, a backslash and an emoji in the name."""
    with psycopg.connect(url) as conn:
        conn.execute(schema_sql("website"))
        conn.execute(
            "insert into votes (email, name, feature_slug, value, content, created_at)"
            " select case when g %% 3 = 0 then upper(e) when g %% 3 = 1 then ' ' || e else e end,"
            " case when g %% 1000 = 0 then 'O''Brien \\ 🎟️' else 'Voter ' || (g %% %s) end,"
            " 'dark-mode', 1, 'vote ' || g, %s::date + g * interval '1 second'"
            " from generate_series(1, %s) g, format('voter%%s@example.com', g %% %s) e",
            (VOTERS, DAY, VOTES, VOTERS),
        )


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until_loading(url: str, process: subprocess.Popen) -> int:
    """The backend pid of the sync session once it is loading a chunk."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sync finished before it could be killed"
        loading = query(
            url,
            "select l.backend_pid from sync_log l join pg_stat_activity a"
            " on a.pid = l.backend_pid where l.status = 'RUNNING' and a.state = 'active'"
            " and (a.query ilike %s or a.query ilike %s)",
            LOADING,
        )
        if loading:
            return loading[0][0]
        time.sleep(0.02)
    raise AssertionError("the sync never started loading")


@pytest.mark.slow
def test_a_sync_killed_mid_load_leaves_nothing_and_the_rerun_converges(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    databases: DatabaseFactory,
    warehouse_url: str,
) -> None:
    website_url = databases.create()
    seed_votes(website_url)
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_")}
    env |= {
        "WEBSITE_DB_URL": website_url,
        "WAREHOUSE_DB_URL": warehouse_url,
        "COSTUDY_HOME": str(tmp_path),
    }
    command = [sys.executable, "-m", sync_process.__name__, "website_votes", DAY.isoformat()]
    with (tmp_path / "sync.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        backend = wait_until_loading(warehouse_url, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sync and anything it started
        process.wait(timeout=WAIT_S)

    # Nothing of the session is visible; its RUNNING row says it started.
    assert query(warehouse_url, "select count(*) from website_people") == [(0,)]
    assert query(warehouse_url, "select count(*) from users") == [(0,)]
    assert query(warehouse_url, "select status, backend_pid from sync_log") == [
        ("RUNNING", backend)
    ]

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rerun = run_assets(DAY, DAY, dg.AssetSelection.assets("website_votes"))
    assert rerun.success, rerun.failures

    sessions = query(warehouse_url, "select status, error_message from sync_log order by id")
    assert [status for status, _ in sessions] == ["FAILED", "SUCCESS"]
    assert sessions[0][1].startswith("abandoned")
    source_ids = {f"vote:{row[0]}" for row in query(website_url, "select id from votes")}
    stored = query(warehouse_url, "select external_id from website_people")
    assert len(stored) == VOTES and {row[0] for row in stored} == source_ids
    assert query(warehouse_url, "select count(*) from users") == [(VOTERS,)]
    names = query(warehouse_url, "select count(*) from users where name = 'O''Brien \\ 🎟️'")
    assert names == [(VOTERS // 1000,)]
