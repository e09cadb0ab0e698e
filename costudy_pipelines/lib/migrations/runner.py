"""Apply, roll back, repair and baseline one database in one environment.

The order of an apply, and why:
1. read what is applied and plan, without the lock and without writing anything: a refused
   plan (edited or missing files, dirty versions, files the runner will not run, destructive
   statements bound for production, versions not yet applied upstream) changes nothing;
2. take the advisory lock (bounded wait), create the tracking tables, and plan again: another
   runner may have applied meanwhile;
3. back up production (pg_dump), then run each pending file: in one transaction together with
   its row in schema_migrations, or, when the file says so, statement by statement with the
   version marked dirty until the last statement succeeded.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus

from costudy_pipelines.lib.migrations import backup, tracking
from costudy_pipelines.lib.migrations.analysis import FileAnalysis, Mode, analyse
from costudy_pipelines.lib.migrations.discovery import Migration, MigrationSet, discover
from costudy_pipelines.lib.migrations.errors import MigrationError, MigrationFailed, PlanRefused
from costudy_pipelines.lib.migrations.execution import (
    ScriptError,
    describe_failure,
    failed_statement,
    run_script,
)
from costudy_pipelines.lib.migrations.lock import migration_lock
from costudy_pipelines.lib.migrations.target import Target
from costudy_pipelines.lib.migrations.tracking import AppliedRow, HistoryEntry, Status

Progress = Callable[[str], None]


def default_actor() -> str:
    """Who runs the migrations, as recorded in schema_migrations.applied_by."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class State(StrEnum):
    APPLIED = "applied"
    BASELINE = "baseline"
    PENDING = "pending"
    EDITED = "edited"  # applied, but the file's checksum changed since
    MISSING_FILE = "missing file"  # applied, but the file is gone
    DIRTY = "dirty"  # a non-transactional file stopped part-way
    OUT_OF_ORDER = "out of order"  # pending below the highest applied version


PROBLEM_STATES = frozenset({State.EDITED, State.MISSING_FILE, State.DIRTY, State.OUT_OF_ORDER})


@dataclass(frozen=True)
class VersionState:
    version: int
    state: State
    migration: Migration | None
    recorded: AppliedRow | None

    @property
    def name(self) -> str:
        if self.migration is not None:
            return self.migration.name
        return self.recorded.name if self.recorded else f"version {self.version}"

    @property
    def is_problem(self) -> bool:
        return self.state in PROBLEM_STATES

    def problem(self, highest_applied: int | None) -> str:
        """What is wrong and what the operator does about it (only for problem states)."""
        recorded, migration = self.recorded, self.migration
        if self.state is State.EDITED and recorded and migration:
            return (
                f"{migration.path} was edited after it was applied (recorded checksum "
                f"{recorded.checksum}, file now {migration.checksum}): restore the applied "
                "text, or accept the edit deliberately with `costudy migrate repair`"
            )
        if self.state is State.MISSING_FILE:
            return (
                f"version {self.version} ({self.name}) is applied but its file is gone: restore it"
            )
        if self.state is State.DIRTY and recorded:
            return (
                f"version {self.version} ({self.name}) is dirty: it stopped part-way outside a "
                f"transaction ({recorded.error or 'no error recorded: the runner was interrupted'})"
                "; finish or undo it by hand, then `costudy migrate repair --dirty applied` "
                "(or `--dirty pending` to run it again)"
            )
        return (
            f"{self.name} is pending but version {highest_applied} is already applied: a file "
            f"cannot slip in below applied versions; renumber it after the last one"
        )


def version_states(migrations: MigrationSet, applied: dict[int, AppliedRow]) -> list[VersionState]:
    files = migrations.by_version()
    highest = max(applied, default=None)
    states = []
    for version in sorted(files.keys() | applied.keys()):
        row, migration = applied.get(version), files.get(version)
        if row is None:
            below = highest is not None and version < highest
            state = State.OUT_OF_ORDER if below else State.PENDING
        elif row.status == Status.DIRTY:
            state = State.DIRTY
        elif migration is None:
            state = State.MISSING_FILE
        elif row.checksum != migration.checksum:
            state = State.EDITED
        else:
            state = State.BASELINE if row.status == Status.BASELINE else State.APPLIED
        states.append(VersionState(version, state, migration, row))
    return states


@dataclass(frozen=True)
class PlannedFile:
    migration: Migration
    analysis: FileAnalysis


@dataclass(frozen=True)
class Plan:
    target: Target
    states: tuple[VersionState, ...]
    pending: tuple[PlannedFile, ...]
    problems: tuple[str, ...]

    @property
    def current_version(self) -> int | None:
        applied = [s.version for s in self.states if s.recorded is not None]
        return max(applied, default=None)


@dataclass(frozen=True)
class AppliedFile:
    version: int
    name: str
    mode: str
    execution_ms: float
    statements: int


@dataclass(frozen=True)
class ApplyReport:
    target: str  # "platform/dev"
    url: str  # masked
    applied: tuple[AppliedFile, ...] = ()
    already_applied: int = 0
    planned: tuple[PlannedFile, ...] = ()  # what a dry run would apply
    backup: Path | None = None
    dry_run: bool = False

    @property
    def version(self) -> int | None:
        return self.applied[-1].version if self.applied else None


@dataclass(frozen=True)
class RunOptions:
    lock_timeout_s: float = 30.0
    backup_dir: Path | None = None  # where production backups go; required for production
    skip_backup: bool = False  # the operator accepts applying to production without one
    dry_run: bool = False
    actor: str = field(default_factory=default_actor)
    upstream: Target | None = None  # the environment promoted before this one
    progress: Progress | None = None

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


# -- planning -------------------------------------------------------------------------------


def file_problems(name: str, analysis: FileAnalysis, *, production: str | None) -> list[str]:
    """Why the runner refuses a file; `production` names the production target, if it is one."""
    problems = [f"{name} {finding}" for finding in analysis.refusals]
    if production and not analysis.allows_destructive:
        problems += [
            f"{name} {finding}: destroys data and {production} is production; once the loss "
            "is intended, start the file with `-- costudy:allow-destructive`"
            for finding in analysis.destructive
        ]
    return problems


def make_plan(conn: psycopg.Connection, target: Target, migrations: MigrationSet) -> Plan:
    """What applying would do in this database, and every reason to refuse it (read-only)."""
    states = version_states(migrations, tracking.read_applied(conn))
    highest = max((s.version for s in states if s.recorded is not None), default=None)
    problems = [state.problem(highest) for state in states if state.is_problem]
    server_version = conn.info.server_version
    pending = tuple(
        PlannedFile(state.migration, analyse(state.migration.sql, server_version=server_version))
        for state in states
        if state.state is State.PENDING and state.migration is not None
    )
    production = target.label if target.production else None
    for planned in pending:
        problems += file_problems(planned.migration.name, planned.analysis, production=production)
    return Plan(target, tuple(states), pending, tuple(problems))


def _upstream_problems(plan: Plan, upstream: Target) -> list[str]:
    """Promotion order: a file reaches this environment only after it is applied upstream."""
    with upstream.connect() as conn:
        applied = tracking.read_applied(conn)
    problems = []
    for planned in plan.pending:
        row = applied.get(planned.migration.version)
        if row is None or row.status == Status.DIRTY:
            problems.append(
                f"{planned.migration.name} is not applied in {upstream.label} yet: "
                f"apply it there before {plan.target.environment}"
            )
        elif row.checksum != planned.migration.checksum:
            problems.append(
                f"{planned.migration.name} was applied in {upstream.label} with checksum "
                f"{row.checksum}, the file now has {planned.migration.checksum}"
            )
    return problems


def _checked_plan(
    conn: psycopg.Connection, target: Target, migrations: MigrationSet, options: RunOptions
) -> Plan:
    plan = make_plan(conn, target, migrations)
    problems = list(plan.problems)
    # A dry run shows the whole promotion at once, before upstream has applied anything.
    if options.upstream is not None and plan.pending and not problems and not options.dry_run:
        problems += _upstream_problems(plan, options.upstream)
    if problems:
        raise PlanRefused(target.label, problems)
    return plan


# -- applying -------------------------------------------------------------------------------


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def history_entry(
    target: Target,
    options: RunOptions,
    action: str,
    migration: Migration | None = None,
    **fields: object,
) -> HistoryEntry:
    if migration is not None:
        fields = {
            "version": migration.version,
            "name": migration.name,
            "checksum": migration.checksum,
            **fields,
        }
    return HistoryEntry(
        action=action, environment=target.environment, actor=options.actor, **fields
    )


def _record_failure(
    conn: psycopg.Connection,
    target: Target,
    options: RunOptions,
    migration: Migration,
    message: str,
) -> None:
    """A failure goes to the history in its own transaction, after the file's was rolled back."""
    with conn.transaction():
        tracking.record_history(
            conn, history_entry(target, options, "fail", migration, detail=message)
        )


def run_file_sql(
    conn: psycopg.Connection, target: Target, name: str, source: str, analysis: FileAnalysis
) -> int:
    """Run a file's text in one execute (inside the caller's transaction); failures explained."""
    if not analysis.statements:
        return 0
    try:
        return run_script(conn, analysis.executable)
    except ScriptError as failure:
        statement = failed_statement(analysis.executed_statements, failure)
        raise MigrationFailed(
            f"{target.label}: "
            + describe_failure(
                name,
                source,
                statement,
                failure,
                consequence="Rolled back whole: nothing from it is applied or recorded.",
            )
        ) from None


def _apply_in_transaction(
    conn: psycopg.Connection,
    target: Target,
    planned: PlannedFile,
    options: RunOptions,
    backup_path: Path | None,
) -> AppliedFile:
    migration, analysis = planned.migration, planned.analysis
    started = time.perf_counter()
    try:
        with conn.transaction():
            count = run_file_sql(conn, target, migration.name, migration.sql, analysis)
            if conn.info.transaction_status != TransactionStatus.INTRANS:
                raise MigrationError(
                    f"{target.label}: {migration.name} ended the runner's transaction itself; "
                    "check the database by hand before anything else runs"
                )
            elapsed = ms_since(started)
            tracking.record_version(
                conn,
                version=migration.version,
                name=migration.name,
                checksum=migration.checksum,
                status=Status.APPLIED,
                transactional=True,
                actor=options.actor,
                execution_ms=elapsed,
            )
            tracking.record_history(
                conn,
                history_entry(
                    target,
                    options,
                    "apply",
                    migration,
                    execution_ms=elapsed,
                    backup_path=str(backup_path) if backup_path else None,
                    detail=f"{analysis.mode} mode, {count} statements",
                ),
            )
    except MigrationFailed as failure:
        _record_failure(conn, target, options, migration, str(failure))
        raise
    return AppliedFile(migration.version, migration.name, analysis.mode, elapsed, count)


def _apply_statement_by_statement(
    conn: psycopg.Connection,
    target: Target,
    planned: PlannedFile,
    options: RunOptions,
    backup_path: Path | None,
) -> AppliedFile:
    migration, statements = planned.migration, planned.analysis.statements
    record = {
        "version": migration.version,
        "name": migration.name,
        "checksum": migration.checksum,
        "transactional": False,
        "actor": options.actor,
    }
    # Dirty first, committed: if the process dies half-way, status shows it.
    tracking.record_version(conn, status=Status.DIRTY, **record)
    started = time.perf_counter()
    for index, statement in enumerate(statements):
        try:
            run_script(conn, statement.text)
        except ScriptError as failure:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("rollback")  # the file's own transaction, aborted by the error
            message = f"{target.label}: " + describe_failure(
                migration.name,
                migration.sql,
                statement,
                failure,
                offset=statement.start,
                consequence=(
                    f"It runs outside a transaction: the {index} statement(s) before it stay "
                    f"applied, and version {migration.version} is marked dirty."
                ),
            )
            tracking.record_version(conn, status=Status.DIRTY, error=message, **record)
            _record_failure(conn, target, options, migration, message)
            raise MigrationFailed(message) from None
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.execute("rollback")
        message = (
            f"{target.label}: {migration.name} opened a transaction and never committed it: "
            f"that part was rolled back and version {migration.version} is marked dirty"
        )
        tracking.record_version(conn, status=Status.DIRTY, error=message, **record)
        _record_failure(conn, target, options, migration, message)
        raise MigrationFailed(message)
    elapsed = ms_since(started)
    with conn.transaction():
        tracking.record_version(conn, status=Status.APPLIED, execution_ms=elapsed, **record)
        tracking.record_history(
            conn,
            history_entry(
                target,
                options,
                "apply",
                migration,
                execution_ms=elapsed,
                backup_path=str(backup_path) if backup_path else None,
                detail=f"no-transaction mode, {len(statements)} statements",
            ),
        )
    return AppliedFile(
        migration.version, migration.name, Mode.NO_TRANSACTION, elapsed, len(statements)
    )


def _apply_file(
    conn: psycopg.Connection,
    target: Target,
    planned: PlannedFile,
    options: RunOptions,
    backup_path: Path | None,
) -> AppliedFile:
    apply = (
        _apply_statement_by_statement
        if planned.analysis.mode is Mode.NO_TRANSACTION
        else _apply_in_transaction
    )
    try:
        return apply(conn, target, planned, options, backup_path)
    finally:
        # Whatever a file did to its session (search_path, role, temp tables) ends with it.
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.execute("discard all")


def production_backup(
    conn: psycopg.Connection, target: Target, version: int | None, options: RunOptions, action: str
) -> Path | None:
    """A pg_dump of a production target before `action`; None elsewhere or when skipped."""
    if not target.production:
        return None
    if options.skip_backup:
        options.say(f"{target.label}: production backup skipped at the operator's request")
        return None
    if options.backup_dir is None:
        raise MigrationError(f"{target.label} is production and no backup directory is configured")
    path = backup.backup(
        target,
        options.backup_dir,
        server_major=conn.info.server_version // 10000,
        version=version,
    )
    options.say(f"{target.label}: backed up to {path} before {action}")
    return path


def apply(
    target: Target, migrations: MigrationSet, options: RunOptions | None = None
) -> ApplyReport:
    """Apply every pending file of `migrations` to `target`, or refuse and change nothing."""
    options = options or RunOptions()
    with target.connect() as conn:
        plan = _checked_plan(conn, target, migrations, options)
        report = ApplyReport(target.label, target.masked_url, already_applied=_applied_count(plan))
        if options.dry_run or not plan.pending:
            return ApplyReport(
                report.target,
                report.url,
                already_applied=report.already_applied,
                planned=plan.pending,
                dry_run=options.dry_run,
            )
        with migration_lock(target, timeout_s=options.lock_timeout_s):
            tracking.ensure_tracking(conn)
            plan = _checked_plan(conn, target, migrations, options)
            backup_path = (
                production_backup(conn, target, plan.current_version, options, "applying")
                if plan.pending
                else None
            )
            applied = []
            for planned in plan.pending:
                options.say(
                    f"{target.label}: applying {planned.migration.name} ({planned.analysis.mode})"
                )
                applied.append(_apply_file(conn, target, planned, options, backup_path))
    return ApplyReport(
        target.label, target.masked_url, tuple(applied), _applied_count(plan), backup=backup_path
    )


def _applied_count(plan: Plan) -> int:
    return sum(1 for state in plan.states if state.state in (State.APPLIED, State.BASELINE))


def apply_pending(
    url: str,
    folder: Path,
    *,
    env_name: str = "test",
    source: str = "DATABASE_URL",
    lock_timeout_s: float = 30.0,
) -> ApplyReport:
    """Bring the database at `url` up to date with the files in `folder` (no production steps).

    For tests and other code that needs a schema: `apply_pending(url, Path("sql/platform"))`.
    """
    folder = Path(folder)
    target = Target(folder.name, env_name, url, source)
    return apply(target, discover(folder), RunOptions(lock_timeout_s=lock_timeout_s))
