"""`costudy sandbox`: the emulated world (generate/dump it, seed the databases from it).

The group is meant to grow (`up`/`down` for the servers): add commands with
`@sandbox.command()`, and every command gets the same error handling.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import prepare_environment
from costudy_pipelines.lib.migrations import MigrationError
from costudy_pipelines.lib.settings import env_file
from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.dump import dump_world
from costudy_pipelines.sandbox.seed import (
    platform_users_table_exists,
    seed_course,
    seed_platform_users,
    seed_website,
)
from costudy_pipelines.sandbox.world import World, WorldConfig, start_for

KNOWN_ERRORS = (
    pg.DatabaseConfigError,
    EmbeddedPostgresError,
    stack.SandboxError,
    MigrationError,
    ValueError,
    OSError,
)


class SandboxGroup(click.Group):
    """Known failures (bad option, unreachable database, unwritable folder) end in one clear
    line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KNOWN_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=SandboxGroup)
def sandbox() -> None:
    """The sandbox: a deterministic world of people, payments and events, in every source."""


def world_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that pick a world (same options, same world, byte for byte)."""
    options = (
        click.option("--seed", default=1, show_default=True, help="Same seed, same world."),
        click.option("--people", type=click.IntRange(min=1), help="People in the world."),
        click.option(
            "--records",
            type=click.IntRange(min=1),
            help="Size the world to about this many records instead of --people.",
        ),
        click.option("--start", help="First day (default: --days before --end)."),
        click.option(
            "--end", help="Last day with data (default: yesterday, UTC); same content either way."
        ),
        click.option("--days", default=90, show_default=True, help="Days of history."),
        click.option(
            "--money-format",
            type=click.Choice(["float", "money", "mixed"]),
            default="money",
            show_default=True,
            help="Whop money fields: Money objects (the pinned API version), floats (an "
            "older SDK release), or both.",
        ),
        click.option(
            "--advance-days",
            default=0,
            show_default=True,
            help="Advance the world this many days first.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def build_world(
    seed: int,
    people: int | None,
    records: int | None,
    start: str | None,
    end: str | None,
    days: int,
    money_format: str,
    advance_days: int,
) -> World:
    if people and records:
        raise click.UsageError("give --people or --records, not both")
    if start and end:
        raise click.UsageError("give --start or --end, not both")
    first = (
        date.fromisoformat(start)
        if start
        else start_for(days, date.fromisoformat(end) if end else None)
    )
    # WorldConfig keywords (it checks money_format itself)
    settings: dict[str, Any] = {
        "seed": seed,
        "start": first,
        "days": days,
        "money_format": money_format,
    }
    if records:
        config = WorldConfig.for_records(records, **settings)
    else:
        config = WorldConfig(people=people or WorldConfig.people, **settings)
    world = World(config)
    for _ in range(advance_days):
        world.advance_day()
    return world


@sandbox.command("dump")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@world_options
def dump(folder: Path, **options: Any) -> None:
    """Write a world to FOLDER (JSONL per API source, CSV for sheets, exports and tables)."""
    started = time.monotonic()
    manifest = dump_world(build_world(**options), folder)
    total = sum(manifest["records"].values())
    click.echo(f"{total} records of {len(manifest['records'])} sources written to {folder}")
    click.echo(f"fingerprint {manifest['fingerprint']}  ({time.monotonic() - started:.1f}s)")


sandbox.add_command(dump, name="generate")


@sandbox.command("seed")
@world_options
def seed(**options: Any) -> None:
    """Load a world into the website, course (and, once migrated, platform) databases named by
    WEBSITE_DB_URL, COURSE_DB_URL and PLATFORM_DB_URL (embedded server for unset ones)."""
    prepare_environment()
    world = build_world(**options)
    for name, counts in (
        ("website", seed_website(os.environ["WEBSITE_DB_URL"], world)),
        ("course", seed_course(os.environ["COURSE_DB_URL"], world)),
    ):
        click.echo(f"{name}: " + ", ".join(f"{table} {count}" for table, count in counts.items()))
    platform_url = os.environ["PLATFORM_DB_URL"]
    if platform_users_table_exists(platform_url):
        click.echo(f"platform: users {seed_platform_users(platform_url, world)}")
    else:
        click.echo("platform: skipped (no users table: apply the platform migrations first)")


def _database_urls() -> dict[str, str]:
    """Every database variable, resolved (the emulators seed the ones they own)."""
    return {database.env_var: database.url for database in prepare_environment()}


@sandbox.command("up")
@world_options
def up(**options: Any) -> None:
    """Start every emulated system on 127.0.0.1, seed the databases and files, write .env."""
    advance = options.pop("advance_days")
    config = build_world(**options, advance_days=0).config
    started = stack.up(config, database_urls=_database_urls())
    for _ in range(max(0, advance - started.day)):
        stack.advance_day(database_urls=_database_urls())
    state = stack.read_state()
    assert state is not None  # stack.up wrote it
    click.echo(f"sandbox up (pid {state.pid}, day {state.day}); variables written to {env_file()}")
    for key, value in stack.sandbox_environment(state).items():
        shown = "***" if key.endswith(("_KEY", "_TOKEN")) else value
        click.echo(f"  {key:<22} {shown}")


@sandbox.command("down")
def down() -> None:
    """Stop the sandbox servers (databases and files stay)."""
    click.echo("stopped" if stack.down() else "not running")


@sandbox.command("advance-day")
def advance_day() -> None:
    """One day passes in every source; prints what was added, changed and deleted."""
    report = stack.advance_day(database_urls=_database_urls())
    click.echo(f"day {report.day} ({report.date}):")
    for source, changes in report.sources.items():
        counts = (len(changes.added), len(changes.changed), len(changes.deleted))
        if any(counts):
            click.echo(f"  {source:<22} +{counts[0]} ~{counts[1]} -{counts[2]}")
