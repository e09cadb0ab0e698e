"""`costudy`: the operator's command line (embedded database, demo, UI).

Each command's module is imported only when that command runs: `costudy --help` imports click
and this file, nothing that talks to a database (psycopg, sqlalchemy), the network (httpx) or
Dagster. `--help` anywhere prints the help of the command it follows without running any group's
callback (some start the embedded server), so asking for help never has a side effect.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

# name -> (module, attribute, one-line help shown by `costudy --help` without importing it).
# test_cli_imports checks each line against the command's own docstring.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "migrate": (
        "costudy_pipelines.commands.migrate",
        "migrate",
        "Schema migrations: sql/<database>/ files, applied dev first, prod last.",
    ),
    "people": (
        "costudy_pipelines.commands.people",
        "people",
        "Probable duplicates (two emails, one person): review, accept, reject, undo.",
    ),
    "rejects": (
        "costudy_pipelines.commands.replay",
        "rejects",
        "Records that failed validation (sync_rejects): see them, replay them.",
    ),
    "reverse-sync": (
        "costudy_pipelines.commands.replay",
        "reverse_sync",
        "The reverse sync (website → platform) from the command line.",
    ),
    "sandbox": (
        "costudy_pipelines.commands.sandbox",
        "sandbox",
        "The sandbox: a deterministic world of people, payments and events, in every source.",
    ),
    "sources": (
        "costudy_pipelines.commands.sources",
        "sources",
        "The registered sources: the variables they read, how their data has looked.",
    ),
    "webhook": (
        "costudy_pipelines.commands.webhook",
        "webhook",
        "The receiver of the website's webhook (pushes that make the reverse sync run sooner).",
    ),
    "worker": (
        "costudy_pipelines.commands.worker",
        "worker",
        "Run steps of runs launched with COSTUDY_EXECUTOR=celery until stopped (SIGTERM: finish "
        "the current steps first; a killed worker's steps go back to the queue).",
    ),
}

HELP_OPTIONS = ("--help",)


class _Placeholder(click.Command):
    """What `costudy --help` lists for a command it has not imported: its name and help."""


class LazyGroup(click.Group):
    """The root group: commands of LAZY_COMMANDS are imported when chosen, and `--help` after
    any command shows that command's help without invoking a callback on the way."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            if _listing_only(ctx):  # the root help's list; completion loads the real one
                return _Placeholder(cmd_name, help=LAZY_COMMANDS[cmd_name][2])
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["costudy.listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta["costudy.listing"] = False

    def invoke(self, ctx: click.Context) -> Any:
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if any(arg in HELP_OPTIONS for arg in args):
            _show_help_of(self, ctx, args)
        return super().invoke(ctx)


def _listing_only(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("costudy.listing"))


def load_command(name: str) -> click.Command:
    """Import the module of command `name` and return its click command."""
    module, attribute, _ = LAZY_COMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), f"{module}.{attribute} is not a click command"
    return command


def _show_help_of(group: click.Group, ctx: click.Context, args: list[str]) -> None:
    """Walk down the command path parsing options only (no callback runs); the command whose
    own arguments hold `--help` prints its help and exits. Returns if `--help` turned out to be
    an option's value rather than a request for help."""
    command: click.Command = group
    context = ctx
    remaining = list(args)
    while isinstance(command, click.Group) and remaining:
        if remaining[0] in HELP_OPTIONS:
            return  # the group's own --help was parsed already
        name, sub, rest = command.resolve_command(context, remaining)
        if sub is None or name is None:
            return
        context = sub.make_context(name, rest, parent=context)  # --help here: prints, exits
        command = sub
        remaining = [*getattr(context, "_protected_args", []), *context.args]


def operator_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Known failures print one clear line and exit 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _operator_errors()):
                raise click.ClickException(str(exc)) from None
            raise

    return wrapper


def _operator_errors() -> tuple[type[Exception], ...]:
    from costudy_pipelines.lib import pg
    from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
    from costudy_pipelines.sandbox.stack import SandboxError

    return (pg.DatabaseConfigError, EmbeddedPostgresError, SandboxError, ValueError)


def step(message: str) -> None:
    click.echo(click.style("==> ", fg="cyan") + message, err=True)


@click.group(cls=LazyGroup)
def main() -> None:
    """costudy-pipelines: keep CoStudy's users, payments and events in sync, and prove it."""


@main.group()
def db() -> None:
    """The embedded PostgreSQL (used for every database variable left unset)."""


@db.command("up")
@operator_errors
def db_up() -> None:
    """Start the embedded server (or reuse the running one) and create its databases."""
    from costudy_pipelines.lib.environment import prepare_environment, record_for_dagster

    started = time.monotonic()
    resolved = prepare_environment()
    record_for_dagster(resolved)
    _print_databases(resolved)
    click.echo(f"ready in {time.monotonic() - started:.1f}s")


@db.command("down")
@operator_errors
def db_down() -> None:
    """Stop the embedded server; its data directory is kept, .env forgets its URLs."""
    from costudy_pipelines.lib.environment import embedded_server, forget_for_dagster

    server = embedded_server()
    stopped = server.stop()
    forget_for_dagster()
    click.echo("stopped" if stopped else f"not running ({server.data_dir})")


@db.command("status")
@operator_errors
def db_status() -> None:
    """Whether the embedded server runs, and the URL each database variable resolves to."""
    from costudy_pipelines.lib import pg
    from costudy_pipelines.lib.environment import embedded_server, load_dotenv_file
    from costudy_pipelines.lib.settings import DATABASES

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
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The world's last day (default: yesterday, UTC; the content is the same either way).",
)
@operator_errors
def demo(people: int, days: int, end: datetime | None) -> None:
    """The main job end to end: sandbox up, every source synced, checks, on the configured
    (default: embedded) databases. The world ends yesterday and the partitions start on its
    first day, so the UI's partitions line up with the data."""
    from costudy_pipelines.demo import run_demo
    from costudy_pipelines.lib.environment import prepare_environment, record_for_dagster
    from costudy_pipelines.sandbox import stack
    from costudy_pipelines.sandbox.world import WorldConfig, start_for

    step("preparing databases")
    resolved = prepare_environment()
    record_for_dagster(resolved)
    _print_databases(resolved)
    step(f"starting the sandbox ({people} people, {days} days) and seeding its databases")
    config = WorldConfig(
        people=people, days=days, start=start_for(days, end.date() if end else None)
    )
    state = stack.up(config, database_urls={db.env_var: db.url for db in resolved})
    os.environ.update(stack.sandbox_environment(state))
    last_day = config.start + timedelta(days=days - 1)
    summary = run_demo(config.start, last_day, progress=step)
    click.echo(summary.render())
    if not summary.success:
        sys.exit(1)
    click.echo("\nOpen the UI on the same setup:  make ui   (then http://127.0.0.1:3000)")


@main.command()
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--charts-port",
    default=8788,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the chart server the UI's chart links and inline charts point at.",
)
@operator_errors
def ui(port: int, charts_port: int) -> None:
    """Start `dg dev` (the webserver and the daemon) against the same databases, and the
    chart server beside it (it stops with `dg dev`)."""
    import subprocess

    from costudy_pipelines.lib.chart_server import CHARTS_PORT_VAR, CHARTS_URL_VAR
    from costudy_pipelines.lib.environment import prepare_environment, record_for_dagster
    from costudy_pipelines.lib.settings import INSTALLED, PROJECT_ROOT

    record_for_dagster(prepare_environment())
    if not os.environ.get(CHARTS_URL_VAR):  # set: the charts are served elsewhere
        os.environ[CHARTS_PORT_VAR] = str(charts_port)  # runs launched by dg link to it
        server = [sys.executable, "-m", "costudy_pipelines.lib.chart_server"]
        # the server's parent becomes dg (execv below): it stops when dg does
        subprocess.Popen([*server, "--port", str(charts_port), "--with-parent"])
    bin_dir = os.path.dirname(sys.executable)
    listen = ["--host", "127.0.0.1", "--port", str(port)]
    if INSTALLED:  # no project folder for dg: the workspace file the wheel carries
        dagster = os.path.join(bin_dir, "dagster")
        workspace = str(PROJECT_ROOT / "workspace.yaml")
        os.execv(dagster, [dagster, "dev", "-w", workspace, *listen])
    dg = os.path.join(bin_dir, "dg")
    os.chdir(PROJECT_ROOT)  # dg finds the project by its pyproject.toml
    os.execv(dg, [dg, "dev", *listen])


if __name__ == "__main__":
    main()
