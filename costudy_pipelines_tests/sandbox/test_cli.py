"""`costudy sandbox dump|generate|seed` through the real command line group."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from costudy_pipelines.cli import main
from costudy_pipelines.lib.settings import DATABASES
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.harness import DatabaseFactory

# the world of WorldConfig's own dates (30 days from 2024-01-01): without --end it ends yesterday
OPTIONS = [
    *("--seed", "3", "--people", "250", "--days", "30", "--advance-days", "1"),
    *("--end", "2024-01-30"),
]


def options_world() -> World:
    world = World(WorldConfig(seed=3, people=250, days=30))
    world.advance_day()
    return world


@pytest.mark.parametrize("command", ["dump", "generate"])
def test_dump_writes_the_world_the_options_name(tmp_path: Path, command: str) -> None:
    result = CliRunner().invoke(main, ["sandbox", command, str(tmp_path), *OPTIONS])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["fingerprint"] == options_world().fingerprint()
    assert manifest["fingerprint"] in result.output


def test_dump_refuses_people_and_records_together(tmp_path: Path) -> None:
    args = ["sandbox", "dump", str(tmp_path), "--people", "5", "--records", "50"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--people or --records" in result.output


def test_seed_loads_the_databases_the_environment_names(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {spec.env_var: databases.create() for spec in DATABASES}  # each its own, as deployed
    for variable, url in urls.items():
        monkeypatch.setenv(variable, url)
    result = CliRunner().invoke(main, ["sandbox", "seed", *OPTIONS])
    assert result.exit_code == 0, result.output
    assert "platform: skipped" in result.output  # its users table comes from its migrations
    world = options_world()
    with psycopg.connect(urls["COURSE_DB_URL"]) as course:
        orders = course.execute("select count(*) from orders").fetchone()[0]
    with psycopg.connect(urls["WEBSITE_DB_URL"]) as website:
        votes = website.execute("select count(*) from votes").fetchone()[0]
    assert (orders, votes) == (world.live_count("orders"), world.live_count("votes"))


def test_seed_names_an_unreachable_database_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = secrets.token_urlsafe(12)
    url = URL.create("postgresql", "app", password, "127.0.0.1", 1, "website")
    for spec in DATABASES:  # every variable set: no embedded server is started
        monkeypatch.setenv(spec.env_var, url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["sandbox", "seed", *OPTIONS])
    assert result.exit_code == 1
    assert "WEBSITE_DB_URL" in result.output
    assert password not in result.output
