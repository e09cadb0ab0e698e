"""`costudy sandbox up / advance-day / down`: the whole emulated world, running for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.sheets.transport import gspread_client
from costudy_pipelines.sources.whop.client import WhopClient
from costudy_pipelines_tests.harness import DatabaseFactory

CONFIG = WorldConfig(people=120, days=10)


@pytest.fixture
def sandbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Where the sandbox keeps its state and env file: this test's own folder.
    monkeypatch.setenv("COSTUDY_HOME", str(tmp_path))
    monkeypatch.setenv("COSTUDY_ENV_FILE", str(tmp_path / ".env"))
    yield tmp_path
    stack.down()


@pytest.fixture
def database_urls(databases: DatabaseFactory) -> dict[str, str]:
    return {
        var: databases.create() for var in ("WEBSITE_DB_URL", "COURSE_DB_URL", "PLATFORM_DB_URL")
    }


def env_values(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if "=" in line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.slow
def test_up_serves_seeds_and_advances_the_same_world(
    sandbox_home: Path, database_urls: dict[str, str]
) -> None:
    (sandbox_home / ".env").write_text("MY_OWN_SETTING=kept\n")
    state = stack.up(CONFIG, database_urls=database_urls)
    assert stack.is_running(state)
    env = env_values(sandbox_home / ".env")
    assert env["MY_OWN_SETTING"] == "kept", "the user's own lines survive"
    world = World(CONFIG)

    # Whop through the product's client: every live payment, exactly once.
    with WhopClient(env["WHOP_API_KEY"], base_url=env["WHOP_API_URL"]) as whop:
        served = [record["id"] for page in whop.payments() for record in page]
    assert sorted(served) == sorted(record["id"] for record in world.records("whop_payments"))
    unauthorised = httpx.get(f"{env['WHOP_API_URL']}/payments", timeout=5)
    assert unauthorised.status_code == 401

    # Sheets through real gspread; databases and Elective files hold the same world.
    sheets = gspread_client(env["GOOGLE_SHEETS_API_URL"], token=env["GOOGLE_SHEETS_TOKEN"])
    assert sheets.open_by_key(next(iter(_spreadsheet_ids(world)))).sheet1.get_all_values()
    with psycopg.connect(database_urls["WEBSITE_DB_URL"]) as conn:
        votes = conn.execute("select count(*) from votes").fetchone()[0]
    assert votes == world.live_count("votes")
    with psycopg.connect(database_urls["PLATFORM_DB_URL"]) as conn:
        users = conn.execute("select count(*) from users").fetchone()[0]
    assert users > 0
    assert sorted(p.name for p in Path(env["ELECTIVE_DROP_DIR"]).glob("*.csv"))

    # A second `up` of the same world reuses the running servers.
    assert stack.up(CONFIG, database_urls=database_urls).pid == state.pid

    report = stack.advance_day(database_urls=database_urls)
    world.advance_day()
    added = report.sources["whop_payments"].added
    assert added, "a day adds payments"
    env = env_values(sandbox_home / ".env")
    with WhopClient(env["WHOP_API_KEY"], base_url=env["WHOP_API_URL"]) as whop:
        served_after = {record["id"] for page in whop.payments() for record in page}
    assert added <= served_after
    assert not report.sources["whop_payments"].deleted & served_after
    with psycopg.connect(database_urls["WEBSITE_DB_URL"]) as conn:
        votes = conn.execute("select count(*) from votes").fetchone()[0]
    assert votes == world.live_count("votes")

    assert stack.down() is True
    assert not stack.is_running(stack.read_state())


def _spreadsheet_ids(world: World) -> list[str]:
    from costudy_pipelines.sandbox.spreadsheets import spreadsheets

    return list(spreadsheets(world))


def test_advance_day_without_a_running_sandbox_says_what_to_do(sandbox_home: Path) -> None:
    with pytest.raises(stack.SandboxError, match="costudy sandbox up"):
        stack.advance_day(database_urls={})
