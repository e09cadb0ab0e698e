"""`costudy migrate`: versioned SQL files per database, promoted dev → prod, checked for drift.

Every command first resolves the database variables (unset ones are served by the embedded
PostgreSQL; `validate --offline` needs none), then reads sql/environments.toml (or --config)
for the databases and their environments in promotion order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import prepare_environment
from costudy_pipelines.lib.migrations import (
    ApplyReport,
    DatabaseMigrations,
    DatabaseStatus,
    EnvironmentStatus,
    MigrationConfig,
    MigrationError,
    MigrationSet,
    RunOptions,
    State,
    Target,
    baseline,
    database_status,
    load_config,
    promote,
    repair,
    rollback,
)
from costudy_pipelines.lib.migrations.backup import list_backups, restore_into_empty
from costudy_pipelines.lib.migrations.config import CONFIG_VAR
from costudy_pipelines.lib.migrations.lint import lint as lint_sql
from costudy_pipelines.lib.migrations.maintenance import DIRTY_RESOLUTIONS, FOREIGN_TABLES, adopt
from costudy_pipelines.lib.migrations.promotion import lint

KNOWN_ERRORS = (MigrationError, pg.DatabaseConfigError, EmbeddedPostgresError, ValueError)
STATE_COLOURS = {
    State.APPLIED: "green",
    State.BASELINE: "green",
    State.PENDING: "yellow",
}


class _MigrateGroup(click.Group):
    """Known failures (in any subcommand) print one clear message and exit 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KNOWN_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_MigrateGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=CONFIG_VAR,
    help="Environments file (default sql/environments.toml).",
)
@click.pass_context
def migrate(ctx: click.Context, config_path: Path | None) -> None:
    """Schema migrations: sql/<database>/ files, applied dev first, prod last."""
    if ctx.invoked_subcommand != "validate":  # validate --offline needs no database at all
        prepare_environment()
    ctx.obj = load_config(config_path)


def _selection(command: Callable) -> Callable:
    command = click.option(
        "--env",
        "-e",
        "environments",
        multiple=True,
        help="Only this environment (repeatable); default: all, in promotion order.",
    )(command)
    return click.option(
        "--database",
        "-d",
        "databases",
        multiple=True,
        help="Only this database (repeatable); default: all configured.",
    )(command)


def _lock_timeout(command: Callable) -> Callable:
    return click.option(
        "--lock-timeout",
        type=float,
        default=None,
        help="Seconds to wait for another runner (default from the config).",
    )(command)


def _options(config: MigrationConfig, lock_timeout: float | None, **kwargs: Any) -> RunOptions:
    return RunOptions(
        lock_timeout_s=config.lock_timeout_s if lock_timeout is None else lock_timeout,
        backup_dir=config.backup_dir,
        progress=lambda message: click.echo(click.style("==> ", fg="cyan") + message, err=True),
        **kwargs,
    )


def _one(
    config: MigrationConfig, database: str | None, environment: str | None
) -> tuple[DatabaseMigrations, Target, MigrationSet]:
    """The single (database, environment) a maintenance command acts on."""
    if database is None:
        if len(config.databases) != 1:
            names = ", ".join(db.name for db in config.databases)
            raise click.UsageError(f"choose a database with --database ({names})")
        database = config.databases[0].name
    chosen = config.database(database)
    if environment is None:
        names = ", ".join(env.name for env in chosen.environments)
        raise click.UsageError(f"choose an environment with --env ({names})")
    return chosen, chosen.target(environment), chosen.discover()


# -- status ---------------------------------------------------------------------------------


def _when(status_row: Any) -> str:
    return f"{status_row.applied_at:%Y-%m-%d %H:%M:%S}" if status_row else ""


def _print_environment(environment: EnvironmentStatus) -> None:
    target = environment.target
    click.echo(
        f"  {click.style(target.environment, bold=True)}"
        f"{' (production)' if target.production else ''}  {target.source}={target.masked_url}"
    )
    if environment.error:
        click.echo(click.style(f"    cannot be read: {environment.error}", fg="red"))
        return
    if not environment.tracked:
        click.echo("    not tracked yet (no schema_migrations table)")
    rows = [("VERSION", "FILE", "STATE", "APPLIED AT", "BY", "MS")]
    for state in environment.states:
        tracked = state.recorded
        rows.append(
            (
                str(state.version),
                state.name,
                state.state.value,
                _when(tracked),
                tracked.applied_by if tracked else "",
                str(tracked.execution_ms) if tracked and tracked.execution_ms is not None else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, cells in enumerate(rows):
        line = "    " + "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        )
        if index == 0:
            click.echo(click.style(line.rstrip(), dim=True))
        else:
            colour = STATE_COLOURS.get(State(cells[2]), "red")
            click.echo(click.style(line.rstrip(), fg=colour))
    applied = environment.count(State.APPLIED, State.BASELINE)
    pending = environment.count(State.PENDING)
    click.echo(
        f"    version {environment.current_version or '-'}: {applied} applied, {pending} pending"
    )


def _print_backups(config: MigrationConfig, database: str) -> None:
    backups = list_backups(config.backup_dir, database)
    click.echo(f"  backups in {config.backup_dir}: {len(backups) or 'none'}")
    for found in backups:
        click.echo(
            f"    {found.environment}  {found.taken_at:%Y-%m-%d %H:%M:%S}  at {found.version}"
            f"  {found.size / 1e6:.1f} MB  {found.path.name}"
        )


def _print_status(status: DatabaseStatus) -> None:
    click.echo(click.style(f"{status.database}", bold=True) + f"  ({status.files} files)")
    if status.discovery_error:
        click.echo(click.style(f"  {status.discovery_error}", fg="red"))
    for environment in status.environments:
        _print_environment(environment)
    if len(status.environments) > 1:
        label = " → ".join(env.target.environment for env in status.environments)
        if status.drift:
            click.echo(click.style(f"  drift ({label}): {len(status.drift)} differences", fg="red"))
            for drift in status.drift:
                click.echo(click.style(f"    {drift}", fg="red"))
        else:
            click.echo(f"  drift ({label}): none")
    # Drift is listed above under its environments; the other problems are not.
    for problem in status.environment_problems:
        click.echo(click.style(f"  problem: {problem}", fg="red"), err=True)


@migrate.command()
@_selection
@click.option("--fail-on-pending", is_flag=True, help="Exit 1 when anything is pending too.")
@click.option("--no-catalog", is_flag=True, help="Skip the live catalog comparison.")
@click.pass_obj
def status(
    config: MigrationConfig,
    databases: tuple[str, ...],
    environments: tuple[str, ...],
    fail_on_pending: bool,
    no_catalog: bool,
) -> None:
    """Applied, pending, edited, missing, dirty and drift, per environment.

    Exits 1 when anything is wrong (with --fail-on-pending, also when anything is pending).
    """
    failed = False
    for database in config.select(databases):
        result = database_status(database, environments, with_catalog=not no_catalog)
        _print_status(result)
        _print_backups(config, database.name)
        failed = failed or bool(result.problems) or (fail_on_pending and result.pending > 0)
    if failed:
        sys.exit(1)


# -- apply ----------------------------------------------------------------------------------


def _print_report(report: ApplyReport) -> None:
    if report.dry_run:
        click.echo(click.style(f"{report.target}", bold=True) + f"  {report.url}  (dry run)")
        if not report.planned:
            click.echo("  up to date: nothing would be applied")
        for planned in report.planned:
            analysis = planned.analysis
            flags = f"{analysis.mode}" + (", destructive" if analysis.destructive else "")
            click.echo(
                click.style(f"  would apply {planned.migration.name} ({flags})", fg="yellow")
            )
            for finding in lint_sql(planned.migration.sql):
                if not finding.acknowledged:
                    click.echo(click.style(f"    lint {finding}", fg="yellow"))
            click.echo("    " + planned.migration.sql.rstrip().replace("\n", "\n    "))
        return
    click.echo(
        click.style(f"{report.target}", bold=True)
        + f"  {report.url}: {len(report.applied)} applied, {report.already_applied} already"
    )
    if report.backup:
        click.echo(f"  backup: {report.backup}")
    for applied in report.applied:
        click.echo(
            f"  {applied.name}  {applied.mode}  {applied.statements} statements  "
            f"{applied.execution_ms} ms"
        )


@click.command("apply")
@_selection
@click.option("--dry-run", is_flag=True, help="Print the plan and the SQL; change nothing.")
@click.option("--skip-backup", is_flag=True, help="Apply to production without a pg_dump backup.")
@click.option(
    "--target",
    "target_version",
    metavar="VERSION",
    help="Apply up to and including this version (a number, or a file or folder name).",
)
@_lock_timeout
@click.pass_obj
def apply_command(
    config: MigrationConfig,
    databases: tuple[str, ...],
    environments: tuple[str, ...],
    dry_run: bool,
    skip_backup: bool,
    target_version: str | None,
    lock_timeout: float | None,
) -> None:
    """Apply pending files to every environment in promotion order (dev first, prod last).

    Stops at the first environment that fails; nothing after it is touched. With --target,
    files after that version stay pending (a refused file after it does not stop the rest).
    """
    options = _options(
        config,
        lock_timeout,
        dry_run=dry_run,
        skip_backup=skip_backup,
        target_version=target_version,
    )
    for database in config.select(databases):
        for report in promote(config, database, environments, options):
            _print_report(report)


migrate.add_command(apply_command, "apply")
migrate.add_command(apply_command, "sync")


# -- maintenance ----------------------------------------------------------------------------


def _maintenance(command: Callable) -> Callable:
    command = click.option("--env", "-e", "environment", help="The environment.")(command)
    command = click.option("--database", "-d", "database", help="The database.")(command)
    return _lock_timeout(command)


@migrate.command("rollback")
@click.argument("version", type=int)
@_maintenance
@click.option("--dry-run", is_flag=True, help="Print what would be rolled back and the SQL.")
@click.pass_obj
def rollback_command(
    config: MigrationConfig,
    version: int,
    database: str | None,
    environment: str | None,
    lock_timeout: float | None,
    dry_run: bool,
) -> None:
    """Undo VERSION and every later applied version (down files, newest first, one transaction)."""
    _, target, migrations = _one(config, database, environment)
    report = rollback(target, migrations, version, _options(config, lock_timeout, dry_run=dry_run))
    verb = "would roll back" if dry_run else "rolled back"
    for migration in report.planned:
        click.echo(f"{report.target}: {verb} {migration.name} with {migration.down_name}")
        if dry_run:
            click.echo("    " + (migration.down_sql or "").rstrip().replace("\n", "\n    "))
    if report.backup:
        click.echo(f"  backup: {report.backup}")


@migrate.command("repair")
@_maintenance
@click.option("--version", "versions", type=int, multiple=True, help="Only this version.")
@click.option("--dirty", type=click.Choice(DIRTY_RESOLUTIONS), help="Resolve dirty versions as.")
@click.option("--reason", help="Why: recorded in the history.")
@click.pass_obj
def repair_command(
    config: MigrationConfig,
    database: str | None,
    environment: str | None,
    lock_timeout: float | None,
    versions: tuple[int, ...],
    dirty: str | None,
    reason: str | None,
) -> None:
    """Accept edited files' checksums deliberately, and resolve dirty versions (recorded)."""
    _, target, migrations = _one(config, database, environment)
    report = repair(
        target,
        migrations,
        versions=versions,
        dirty=dirty,
        reason=reason,
        options=_options(config, lock_timeout),
    )
    for action in report.actions or ("nothing to repair",):
        click.echo(f"{report.target}: {action}")


@migrate.command("init")
@_selection
@click.option(
    "--baseline", "baseline_version", type=int, help="Record files up to VERSION as applied."
)
@click.option(
    "--from",
    "from_tool",
    type=click.Choice(sorted(FOREIGN_TABLES)),
    help="Adopt that tool's history: baseline at the version it applied.",
)
@click.option("--from-table", help="That tool's table (default: the tool's own default).")
@_lock_timeout
@click.pass_obj
def init_command(
    config: MigrationConfig,
    databases: tuple[str, ...],
    environments: tuple[str, ...],
    baseline_version: int | None,
    from_tool: str | None,
    from_table: str | None,
    lock_timeout: float | None,
) -> None:
    """Start tracking: create the tracking table; --baseline marks an existing schema's files,
    --from golang-migrate|flyway|dbmate|diesel|prisma takes the versions that tool recorded."""
    selected = config.select(databases)
    if (baseline_version is not None or from_tool) and len(selected) != 1:
        raise click.UsageError("--baseline/--from need one --database: versions are per database")
    if baseline_version is not None and from_tool:
        raise click.UsageError("--baseline and --from exclude each other")
    for database in selected:
        migrations = database.discover()
        for environment in _environments(database, environments):
            target = database.target(environment)
            options = _options(config, lock_timeout)
            if from_tool:
                marked = adopt(target, migrations, from_tool, from_table, options)
            else:
                marked = baseline(target, migrations, baseline_version, options)
            done = f", baselined versions {marked[0]}–{marked[-1]}" if marked else ""
            click.echo(f"{target.label}: tracking{done}")


@migrate.command("restore")
@click.argument("backup_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--database", "-d", "database", help="The database.")
@click.option("--env", "-e", "environment", help="Restore into this environment's database.")
@click.option(
    "--url-env",
    help="Restore into the database this variable names instead (e.g. a fresh one to check "
    "the backup).",
)
@click.option(
    "--map-role",
    "map_roles",
    multiple=True,
    metavar="OLD=NEW",
    help="Give OLD's objects and grants to NEW where the target cluster has no role OLD "
    "(default: the restoring user). Repeatable.",
)
@click.pass_obj
def restore_command(
    config: MigrationConfig,
    backup_file: Path,
    database: str | None,
    environment: str | None,
    url_env: str | None,
    map_roles: tuple[str, ...],
) -> None:
    """Restore BACKUP_FILE (from `status`'s list) into an empty database, with the bundled
    pg_restore (PostgreSQL 16: the version that wrote it), owners and grants included; roles
    the target cluster lacks are mapped (--map-role, else the restoring user) and listed."""
    chosen, target, _ = _one(config, database, environment)
    if url_env:
        url = os.environ.get(url_env)
        if not url:
            raise click.UsageError(f"{url_env} is not set: it should name the database to fill")
        target = chosen.target(target.environment, url=url, source=url_env)
    role_map = {}
    for pair in map_roles:
        old, equals, new = pair.partition("=")
        if not equals or not old or not new:
            raise click.UsageError(f"--map-role takes OLD=NEW, not {pair!r}")
        role_map[old] = new
    report = restore_into_empty(backup_file, target, role_map)
    click.echo(
        f"{target.label}: restored {backup_file} into {target.masked_url} with its owners and "
        f"grants ({', '.join(report.roles) or 'no roles'})"
    )
    for line in report.describe():
        click.echo(click.style(f"mapped: {line}", fg="yellow"))


def _environments(database: DatabaseMigrations, names: tuple[str, ...]) -> list[str]:
    return list(names) or [environment.name for environment in database.environments]


@migrate.command("validate")
@_selection
@click.option("--offline", is_flag=True, help="Check the files only, not the databases.")
@click.option("--strict", is_flag=True, help="Unacknowledged lint warnings fail too.")
@click.pass_obj
def validate_command(
    config: MigrationConfig,
    databases: tuple[str, ...],
    environments: tuple[str, ...],
    offline: bool,
    strict: bool,
) -> None:
    """Check before deploying: file names, what the runner would refuse, destructive statements
    without the allow directive, and (unless --offline) that applied files are unchanged and
    the environments agree (applied sets and catalogs). Each problem names its environment."""
    if not offline:
        prepare_environment()
    problems: list[str] = []
    warnings: list[str] = []
    for database in config.select(databases):
        report = lint(database)
        problems += report.problems
        warnings += report.warnings
        for line in report.acknowledged:
            click.echo(click.style(f"acknowledged: {line}", dim=True))
        if not offline:
            result = database_status(database, environments)
            # A folder that cannot be read is already in the lint's problems.
            problems += [p for p in result.problems if p != result.discovery_error]
    for warning in warnings:
        click.echo(click.style(f"warning: {warning}", fg="yellow"))
    for problem in problems:
        click.echo(click.style(f"problem: {problem}", fg="red"))
    if problems or (strict and warnings):
        sys.exit(1)
    click.echo("valid" + (f" ({len(warnings)} warnings)" if warnings else ""))
