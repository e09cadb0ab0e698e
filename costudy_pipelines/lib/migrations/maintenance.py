"""The deliberate operator actions: rollback, repair, baseline. Each runs under the lock.

- rollback VERSION runs the down files of VERSION and of every later applied version, newest
  first, all in one transaction: either the database is back before VERSION, or unchanged.
- repair accepts edited files' checksums (the edit was deliberate) and resolves dirty
  versions (the operator says whether the half-run file is now complete or undone). Each
  change is written to the history with the previous checksum and the operator's reason.
- baseline starts tracking an existing database whose schema already matches files 1..N;
  adopt does it at the version golang-migrate or Flyway recorded there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import psycopg

from costudy_pipelines.lib.migrations import catalog, tracking
from costudy_pipelines.lib.migrations.analysis import Mode, analyse
from costudy_pipelines.lib.migrations.discovery import Migration, MigrationSet, flyway_version
from costudy_pipelines.lib.migrations.errors import MigrationError, PlanRefused
from costudy_pipelines.lib.migrations.runner import (
    AppliedFile,
    RunOptions,
    Session,
    State,
    Status,
    VersionState,
    locked_session,
    ms_since,
    version_states,
)
from costudy_pipelines.lib.migrations.target import Target
from costudy_pipelines.lib.migrations.tracking import AppliedRow, TrackingTable

DIRTY_RESOLUTIONS = ("applied", "pending")


@dataclass(frozen=True)
class RollbackReport:
    target: str
    rolled_back: tuple[AppliedFile, ...] = ()
    planned: tuple[Migration, ...] = ()  # newest first
    backup: Path | None = None
    dry_run: bool = False


def _rollback_plan(
    target: Target, migrations: MigrationSet, applied: dict[int, AppliedRow], version: int
) -> list[Migration]:
    if version not in applied:
        listed = ", ".join(map(str, sorted(applied))) or "none"
        raise MigrationError(
            f"{target.label}: version {version} is not applied (applied: {listed})"
        )
    states = {state.version: state for state in version_states(migrations, applied)}
    undo = [states[v] for v in sorted(applied, reverse=True) if v >= version]
    problems, plan = [], []
    for state in undo:
        migration = state.migration.render(target.placeholders) if state.migration else None
        if state.state not in (State.APPLIED, State.BASELINE) or migration is None:
            problems.append(state.problem(max(applied)))
        elif migration.down_sql is None:
            problems.append(f"{migration.name} has no down file ({migration.down_name})")
        else:
            analysis = analyse(migration.down_sql)
            if analysis.refusals or analysis.mode is Mode.NO_TRANSACTION:
                reasons = "; ".join(map(str, analysis.refusals)) or "it asks for no transaction"
                problems.append(f"{migration.down_name} must run in one transaction: {reasons}")
            plan.append(migration)
    if problems:
        raise PlanRefused(target.label, problems)
    return plan


def rollback(
    target: Target, migrations: MigrationSet, version: int, options: RunOptions | None = None
) -> RollbackReport:
    """Undo `version` and every later applied version with their down files, atomically."""
    options = options or RunOptions()
    with locked_session(target, options) as session:
        applied = tracking.read_applied(session.conn, target.tracking)
        plan = _rollback_plan(target, migrations, applied, version)
        if options.dry_run:
            return RollbackReport(target.label, planned=tuple(plan), dry_run=True)
        session.backup(max(applied), "rolling back")
        done = []
        with session.conn.transaction():
            for migration in plan:
                options.say(f"{target.label}: rolling back {migration.name}")
                done.append(_roll_back(session, migration))
    return RollbackReport(target.label, tuple(done), tuple(plan), session.backup_path)


def _roll_back(session: Session, migration: Migration) -> AppliedFile:
    """Run one down file and forget its version (inside the caller's transaction)."""
    down_sql = migration.down_sql or ""
    analysis = analyse(down_sql)
    started = time.perf_counter()
    count = session.run_file_sql(migration.down_name, down_sql, analysis)
    elapsed = ms_since(started)
    tracking.forget_version(session.conn, session.target.tracking, migration.version)
    session.history(
        "rollback", migration, execution_ms=elapsed, detail=f"ran {migration.down_name}"
    )
    return AppliedFile(migration.version, migration.down_name, analysis.mode, elapsed, count)


@dataclass(frozen=True)
class RepairReport:
    target: str
    actions: tuple[str, ...]


def repair(
    target: Target,
    migrations: MigrationSet,
    *,
    versions: Collection[int] = (),
    dirty: str | None = None,
    reason: str | None = None,
    options: RunOptions | None = None,
) -> RepairReport:
    """Accept edited checksums and resolve dirty versions (`dirty`: 'applied' or 'pending')."""
    options = options or RunOptions()
    if dirty is not None and dirty not in DIRTY_RESOLUTIONS:
        raise MigrationError(f"dirty versions resolve to one of {DIRTY_RESOLUTIONS}, not {dirty!r}")
    with locked_session(target, options) as session:
        applied = tracking.read_applied(session.conn, target.tracking)
        unknown = sorted(set(versions) - applied.keys())
        if unknown:
            raise MigrationError(
                f"{target.label}: versions {unknown} are not recorded: nothing to repair"
            )
        states = [
            state
            for state in version_states(migrations, applied)
            if state.recorded is not None and (not versions or state.version in versions)
        ]
        dirty_states = [state for state in states if state.state is State.DIRTY]
        if dirty_states and dirty is None:
            listed = ", ".join(state.name for state in dirty_states)
            raise MigrationError(
                f"{target.label}: {listed} dirty: say what it is now — `--dirty applied` when "
                "its changes are complete, `--dirty pending` when they were undone and it "
                "should run again"
            )
        actions = []
        with session.conn.transaction():
            for state in states:
                action = _repair_one(session, state, dirty, reason)
                if action:
                    actions.append(action)
    return RepairReport(target.label, tuple(actions))


def _repair_one(
    session: Session, state: VersionState, dirty: str | None, reason: str | None
) -> str | None:
    """Repair one recorded version if it needs it; the action taken, for the report."""
    conn, recorded, migration = session.conn, state.recorded, state.migration
    table = session.target.tracking
    assert recorded is not None  # repair only looks at recorded versions
    if state.state is State.EDITED and migration is not None:
        tracking.accept_checksum(conn, table, state.version, migration.name, migration.checksum)
        action = (
            f"accepted the edited {migration.name} "
            f"(checksum {recorded.checksum} -> {migration.checksum})"
        )
    elif state.state is State.DIRTY and dirty == "applied":
        tracking.mark_applied(conn, table, state.version)
        if migration is not None:
            tracking.accept_checksum(conn, table, state.version, migration.name, migration.checksum)
        action = f"marked dirty {state.name} as applied"
    elif state.state is State.DIRTY:
        tracking.forget_version(conn, table, state.version)
        action = f"marked dirty {state.name} as pending (it runs again on the next apply)"
    else:
        return None
    session.history(
        "repair",
        version=state.version,
        name=state.name,
        checksum=migration.checksum if migration else None,
        previous_checksum=recorded.checksum,
        detail=f"{action}; " + (f"reason: {reason}" if reason else "no reason given"),
    )
    return action


def baseline(
    target: Target,
    migrations: MigrationSet,
    version: int | None = None,
    options: RunOptions | None = None,
) -> list[int]:
    """Create the tracking tables; with `version`, record files up to it as already applied."""
    options = options or RunOptions()
    with locked_session(target, options) as session:
        tracking.ensure_tracking(session.conn, target.tracking)
        if version is None:
            return []
        applied = tracking.read_applied(session.conn, target.tracking)
        if applied:
            raise MigrationError(
                f"{target.label} already tracks {len(applied)} versions (up to {max(applied)}): "
                "a baseline only starts tracking an untracked database"
            )
        files = migrations.by_version()
        if version not in files:
            raise MigrationError(
                f"{target.label}: no file with version {version} in {migrations.folder}"
            )
        baselined = [migration for v, migration in sorted(files.items()) if v <= version]
        with session.conn.transaction():
            for migration in baselined:
                session.record(migration, Status.BASELINE, transactional=True)
                session.history("baseline", migration, detail=f"baseline at {version}")
            catalog.record(session.conn, target.tracking, version)
    return [migration.version for migration in baselined]


# Where each tool keeps its history by default, for `init --from TOOL`.
FOREIGN_TABLES = {
    "golang-migrate": "public.schema_migrations",
    "flyway": "flyway_schema_history",
    "dbmate": "public.schema_migrations",
    "diesel": "public.__diesel_schema_migrations",
    "prisma": "public._prisma_migrations",
}
# The tools whose table lists every applied version (golang-migrate keeps only the latest).
_LISTING_TOOLS = frozenset({"flyway", "dbmate", "diesel", "prisma"})


def diesel_version(recorded: str) -> int:
    """Diesel's recorded version (`20190226002946`, `202510080845080000`: the folder name's
    digits) as discovery numbers its folders (14-digit stamps × 10,000 + the sequence)."""
    digits = recorded.replace("-", "")
    return int(digits) * 10_000 if len(digits) == 14 else int(digits)


def _prisma_version(name: str) -> int:
    """`01_init` or `20240101120000_init`: the number before the first underscore."""
    return int(name.split("_", 1)[0])


def _listed_versions(conn: psycopg.Connection, tool: str, table: TrackingTable) -> list[int]:
    """dbmate, Diesel and Prisma: every applied version, from the tool's own rows."""
    if tool == "prisma":
        unfinished = conn.execute(
            table.format(
                "select migration_name from {table}"
                " where finished_at is null and rolled_back_at is null"
            )
        ).fetchall()
        if unfinished:
            listed = ", ".join(row[0] for row in unfinished)
            raise MigrationError(
                f"{table.label}: Prisma recorded unfinished migrations ({listed}): resolve them "
                "with `prisma migrate resolve` first"
            )
        rows = conn.execute(
            table.format(
                "select migration_name from {table}"
                " where finished_at is not null and rolled_back_at is null"
            )
        ).fetchall()
        names = [row[0] for row in rows]
        convert: Callable[[str], int] = _prisma_version
    else:
        names = [row[0] for row in conn.execute(table.format("select version from {table}"))]
        convert = diesel_version if tool == "diesel" else int
    try:
        return sorted({convert(str(name)) for name in names})
    except ValueError:
        raise MigrationError(
            f"{table.label}: {tool} versions {names} are not the numbers of this folder's names"
        ) from None


def _foreign_versions(
    conn: psycopg.Connection, tool: str, table: TrackingTable, dotted: bool = False
) -> list[int]:
    """The versions `tool` recorded as applied in `table`; MigrationError when unusable."""
    if not tracking.table_columns(conn, table):
        raise MigrationError(f"{table.label} does not exist: no {tool} history to adopt")
    if tool == "golang-migrate":
        rows = conn.execute(table.format("select version, dirty from {table}")).fetchall()
        if not rows:
            raise MigrationError(f"{table.label} records no version: nothing to adopt")
        [(version, dirty)] = rows[-1:]
        if dirty:
            raise MigrationError(
                f"{table.label}: golang-migrate left version {version} dirty: resolve it "
                "with `migrate force` first"
            )
        return [int(version)]
    if tool != "flyway":
        versions = _listed_versions(conn, tool, table)
        if not versions:
            raise MigrationError(f"{table.label} records no version: nothing to adopt")
        return versions
    failed = conn.execute(
        table.format("select version, script from {table} where not success")
    ).fetchall()
    if failed:
        raise MigrationError(
            f"{table.label}: Flyway recorded failed migrations ({failed}): run `flyway repair`"
        )
    rows = conn.execute(
        table.format("select version from {table} where version is not null order by 1")
    ).fetchall()
    convert = flyway_version if dotted else int
    try:
        return sorted({convert(version) for (version,) in rows})
    except ValueError:
        raise MigrationError(
            f"{table.label}: dotted Flyway versions ({[row[0] for row in rows]}) need "
            "`dotted_versions = true` for the database"
        ) from None


def adopt(
    target: Target,
    migrations: MigrationSet,
    tool: str,
    table: str | None = None,
    options: RunOptions | None = None,
) -> list[int]:
    """Start tracking a database `tool` migrated so far: baseline at the version it reached.

    Its own table is only read; it stays for the other tool (or a later `drop table`).
    """
    if tool not in FOREIGN_TABLES:
        raise MigrationError(f"cannot adopt from {tool!r} (known: {', '.join(FOREIGN_TABLES)})")
    foreign = TrackingTable.parse(table or FOREIGN_TABLES[tool], f"{tool}'s table")
    if foreign == target.tracking:
        raise MigrationError(
            f"{target.label}: {tool}'s table {foreign.label} is also costudy's tracking table: "
            'set `tracking_table = "schema.name"` for the database to another name first'
        )
    with target.connect() as conn:
        versions = _foreign_versions(conn, tool, foreign, migrations.dotted_versions)
    files = migrations.by_version()
    unknown = [version for version in versions if version not in files]
    # Flyway, dbmate, Diesel and Prisma list every applied version; golang-migrate only the
    # latest (all below are applied).
    listed = versions if tool in _LISTING_TOOLS else files
    skipped = [v for v in files if v <= versions[-1] and v not in listed]
    if unknown or skipped:
        raise MigrationError(
            f"{target.label}: {tool} history and {migrations.folder} disagree: "
            + "; ".join(
                [f"applied versions {unknown} have no file"] * bool(unknown)
                + [f"files {skipped} are not applied there"] * bool(skipped)
            )
        )
    return baseline(target, migrations, versions[-1], options)
