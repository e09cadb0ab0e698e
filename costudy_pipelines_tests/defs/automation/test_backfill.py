"""A new source is one config entry; a backfill of several partitions is one run (README's CLI)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.harness import HANG_S, DatabaseFactory, project_environment

DAGSTER = str(Path(sys.executable).parent / "dagster")
CONFIG = WorldConfig(people=150, days=6)
DAYS = (date(2024, 1, 2), date(2024, 1, 4))  # inclusive range to backfill


def dagster(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGSTER, *args, "-m", "costudy_pipelines.definitions"],
        cwd=env["COSTUDY_HOME"],  # Dagster's CLI loads ./.env over the environment
        env={**env, "DAGSTER_HOME": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )


@pytest.fixture
def env(databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    environment = project_environment(databases, tmp_path / "home")
    for key in ("COSTUDY_HOME", "COSTUDY_ENV_FILE"):  # the sandbox started from this process
        monkeypatch.setenv(key, environment[key])
    yield environment
    stack.down()


def test_a_new_sheet_is_one_config_entry(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "sources.toml"
    partner = '{ name = "partner_sales", spreadsheet_key = "k", worksheet = "Sales" },'
    project = (PROJECT_ROOT / "sources.toml").read_text()
    config.write_text(project.replace("worksheets = [", f"worksheets = [\n  {partner}"))
    listed = dagster("asset", "list", env={**env, "COSTUDY_SOURCES_CONFIG": str(config)})
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "sheet_partner_sales" in listed.stdout
    assert "sheet_partner_sales" not in dagster("asset", "list", env=env).stdout


@pytest.mark.slow
def test_backfill_of_several_partitions_runs_once_and_loads_each_day(env: dict[str, str]) -> None:
    urls = {var: env[var] for var in ("WEBSITE_DB_URL", "COURSE_DB_URL", "PLATFORM_DB_URL")}
    state = stack.up(CONFIG, database_urls=urls)
    apply_pending(env["WAREHOUSE_DB_URL"], PROJECT_ROOT / "sql" / "warehouse")

    first, last = (day.isoformat() for day in DAYS)
    run = dagster(
        "asset",
        "materialize",
        "--select",
        "whop_payments",
        "--partition-range",
        f"{first}...{last}",
        env={**env, **stack.sandbox_environment(state)},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    with psycopg.connect(env["WAREHOUSE_DB_URL"]) as conn:
        sessions = conn.execute(
            "select partition_key, run_id, status from sync_log where source = 'whop_payments'"
            " order by partition_key"
        ).fetchall()
        stored = {key for (key,) in conn.execute("select external_id from whop_payments")}
    assert [key for key, _, _ in sessions] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert len({run_id for _, run_id, _ in sessions}) == 1, "one run for the whole range"
    assert {status for _, _, status in sessions} <= {"SUCCESS", "PARTIAL"}

    start = datetime(*DAYS[0].timetuple()[:3], tzinfo=UTC).timestamp() * 1000
    end = datetime(2024, 1, 5, tzinfo=UTC).timestamp() * 1000
    expected = {
        entry.key
        for entry in World(CONFIG).entries("whop_payments")
        if start <= entry.created_ms < end and entry.reject is None
    }
    assert expected and stored == expected
