"""`costudy`: the operator's command line (embedded database, demo, UI)."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import click

from costudy_pipelines.commands.migrate import migrate
from costudy_pipelines.commands.people import people
from costudy_pipelines.commands.replay import rejects, reverse_sync
from costudy_pipelines.commands.sandbox import sandbox
from costudy_pipelines.commands.sources import sources
from costudy_pipelines.commands.webhook import webhook
from costudy_pipelines.commands.worker import worker
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import (
    embedded_server,
    load_dotenv_file,
    prepare_environment,
    record_for_dagster,
)
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines.sandbox.stack import SandboxError

P = ParamSpec("P")
R = TypeVar("R")

OPERATOR_ERRORS = (pg.DatabaseConfigError, EmbeddedPostgresError, SandboxError, ValueError)


def operator_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Known failures print one clear line and exit 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OPERATOR_ERRORS as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def step(message: str) -> None:
    click.echo(click.style("==> ", fg="cyan") + message, err=True)


@click.group()
def main() -> None:
    """costudy-pipelines: keep CoStudy's users, payments and events in sync, and prove it."""


@main.group()
def db() -> None:
    """The embedded PostgreSQL (used for every database variable left unset)."""


@db.command("up")
@operator_errors
def db_up() -> None:
    """Start the embedded server (or reuse the running one) and create its databases."""
    started = time.monotonic()
    resolved = prepare_environment()
    record_for_dagster(resolved)
    _print_databases(resolved)
    click.echo(f"ready in {time.monotonic() - started:.1f}s")


@db.command("down")
@operator_errors
def db_down() -> None:
    """Stop the embedded server; its data directory is kept."""
    server = embedded_server()
    click.echo("stopped" if server.stop() else f"not running ({server.data_dir})")


@db.command("status")
@operator_errors
def db_status() -> None:
    """Whether the embedded server runs, and the URL each database variable resolves to."""
    load_dotenv_file()
    server = embedded_server()
    state = server.status()
    if state.running:
        click.echo(f"embedded PostgreSQL: running (pid {state.pid}, 127.0.0.1:{state.port})")
    else:
        click.echo(f"embedded PostgreSQL: stopped (data directory {state.data_dir})")
    for spec in DATABASES:
        url = os.environ.get(spec.env_var)
        where = (
            pg.mask(url) if url else f"embedded: {pg.mask(server.server_url(spec.embedded_name))}"
        )
        click.echo(f"  {spec.env_var:<22} {where}")


def _print_databases(resolved: list) -> None:
    for database in resolved:
        origin = "embedded" if database.embedded else "environment"
        click.echo(f"  {database.env_var:<22} {database.masked}  ({origin})")


@main.command()
@click.option("--people", default=1000, show_default=True, help="People in the sandbox world.")
@click.option("--days", default=30, show_default=True, help="Days of history to sync.")
@operator_errors
def demo(people: int, days: int) -> None:
    """The main job end to end: sandbox up, every source synced, checks, on the configured
    (default: embedded) databases."""
    from costudy_pipelines.demo import run_demo
    from costudy_pipelines.sandbox import stack
    from costudy_pipelines.sandbox.world import WorldConfig

    step("preparing databases")
    resolved = prepare_environment()
    record_for_dagster(resolved)
    _print_databases(resolved)
    step(f"starting the sandbox ({people} people, {days} days) and seeding its databases")
    config = WorldConfig(people=people, days=days)
    state = stack.up(config, database_urls={db.env_var: db.url for db in resolved})
    os.environ.update(stack.sandbox_environment(state))
    last_day = config.start + timedelta(days=days - 1)
    summary = run_demo(config.start, last_day, progress=step)
    click.echo(summary.render())
    if not summary.success:
        sys.exit(1)
    click.echo("\nOpen the UI on the same setup:  make ui   (then http://127.0.0.1:3000)")


@main.command()
@click.option("--port", default=3000, show_default=True)
@operator_errors
def ui(port: int) -> None:
    """Start `dg dev` (the webserver and the daemon) against the same databases."""
    record_for_dagster(prepare_environment())
    dg = os.path.join(os.path.dirname(sys.executable), "dg")
    os.chdir(PROJECT_ROOT)  # dg finds the project by its pyproject.toml
    os.execv(dg, [dg, "dev", "--host", "127.0.0.1", "--port", str(port)])


main.add_command(migrate)
main.add_command(people)
main.add_command(rejects)
main.add_command(reverse_sync)
main.add_command(sandbox)
main.add_command(sources)
main.add_command(webhook)
main.add_command(worker)

if __name__ == "__main__":
    main()
