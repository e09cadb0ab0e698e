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
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Unpack

import psycopg
from psycopg.pq import TransactionStatus

from costudy_pipelines.lib.migrations import backup, catalog, tracking
from costudy_pipelines.lib.migrations.analysis import FileAnalysis, Mode, analyse
from costudy_pipelines.lib.migrations.blocking import WAIT_ERRORS, BlockerWatch
from costudy_pipelines.lib.migrations.discovery import Migration, MigrationSet, discover
from costudy_pipelines.lib.migrations.errors import (
    DiscoveryError,
    MigrationError,
    MigrationFailed,
    PlanRefused,
)
from costudy_pipelines.lib.migrations.execution import (
    ScriptError,
    describe_failure,
    failed_statement,
    run_script,
)
from costudy_pipelines.lib.migrations.lock import migration_lock
from costudy_pipelines.lib.migrations.sqltext import Kind, Statement, Token
from costudy_pipelines.lib.migrations.target import Target
from costudy_pipelines.lib.migrations.tracking import (
    AppliedRow,
    HistoryEntry,
    HistoryFields,
    Status,
)

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
            "cannot slip in below applied versions; renumber it after the last one, or allow "
            "it deliberately with `out_of_order = true` for the database"
        )


def version_states(migrations: MigrationSet, applied: dict[int, AppliedRow]) -> list[VersionState]:
    files = migrations.by_version()
    highest = max(applied, default=None)
    states = []
    for version in sorted(files.keys() | applied.keys()):
        row, migration = applied.get(version), files.get(version)
        if row is None:
            below = highest is not None and version < highest and not migrations.out_of_order
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
    hint: str | None = None  # which pending file is the first refused, and the good prefix

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
    target_version: str | None = None  # apply up to and including this version (`--target`)
    actor: str = field(default_factory=default_actor)
    upstream: Target | None = None  # the environment promoted before this one
    progress: Progress | None = None

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


# -- planning -------------------------------------------------------------------------------


def approval_for(approvals: Mapping[str, str], migration: Migration) -> str | None:
    """The reason the environment approves the file's destructive statements, if it does
    (listed by file name, or by folder name for a folder-per-migration layout)."""
    folder = migration.name.split("/")[0]
    return approvals.get(migration.name) or approvals.get(folder)


def file_problems(
    name: str, analysis: FileAnalysis, *, production: str | None, approval: str | None = None
) -> list[str]:
    """Why the runner refuses a file; `production` names the production target, if it is one;
    `approval` is the environment's reason for allowing its destructive statements."""
    problems = [f"{name} {finding}" for finding in analysis.refusals]
    if production and not analysis.allows_destructive and approval is None:
        problems += [
            f"{name} {finding}: destroys data and {production} is production; once the loss "
            "is intended, list the file under the environment's `allow_destructive` with a "
            "reason (or start it with `-- costudy:allow-destructive`)"
            for finding in analysis.destructive
        ]
    return problems


def make_plan(
    conn: psycopg.Connection,
    target: Target,
    migrations: MigrationSet,
    up_to: int | None = None,
) -> Plan:
    """What applying would do in this database (pending files up to and including `up_to`,
    all without it), and every reason to refuse it (read-only)."""
    states = version_states(migrations, tracking.read_applied(conn, target.tracking))
    highest = max((s.version for s in states if s.recorded is not None), default=None)
    problems = [state.problem(highest) for state in states if state.is_problem]
    server_version = conn.info.server_version
    pending = []
    production = target.label if target.production else None
    good: list[Migration] = []  # the pending files before the first refused one
    first_refused: str | None = None
    for state in states:
        if state.state is not State.PENDING or state.migration is None:
            continue
        if up_to is not None and state.version > up_to:
            continue
        try:
            migration = state.migration.render(target.placeholders)
        except DiscoveryError as exc:
            problems.append(str(exc))
            first_refused = first_refused or state.migration.name
            continue
        pending.append(
            PlannedFile(
                migration,
                analyse(
                    migration.sql,
                    server_version=server_version,
                    no_transaction=migration.no_transaction,
                ),
            )
        )
        planned = pending[-1]
        refused = file_problems(
            migration.name,
            planned.analysis,
            production=production,
            approval=approval_for(target.approvals, migration),
        ) + _touches_tracking(planned, target.tracking)
        problems += refused
        if refused:
            first_refused = first_refused or migration.name
        elif first_refused is None:
            good.append(migration)
    hint = None
    if first_refused is not None:
        prefix = (
            f"`apply --target {good[-1].version}` applies the {len(good)} pending file(s) before it"
            if good
            else "no pending file comes before it"
        )
        hint = f"The first refused file is {first_refused}: {prefix}."
    return Plan(target, tuple(states), tuple(pending), tuple(problems), hint)


def _identifier(token: Token) -> str | None:
    if token.kind is Kind.WORD:
        return token.text.lower()
    if token.kind is Kind.IDENT:
        return token.text[1:-1].replace('""', '"')
    return None


def qualified_names(statement: Statement) -> Iterator[tuple[tuple[str, ...], int]]:
    """Every dotted name of the statement (`a`, `a.b`, `"a".b.c`): its parts and token index."""
    tokens = statement.tokens
    index = 0
    while index < len(tokens):
        first = _identifier(tokens[index])
        if first is None:
            index += 1
            continue
        parts, end = [first], index + 1
        while (
            end + 1 < len(tokens)
            and tokens[end].text == "."
            and (part := _identifier(tokens[end + 1])) is not None
        ):
            parts.append(part)
            end += 2
        yield tuple(parts), index
        index = end


def _search_path(statement: Statement) -> list[str] | None:
    """The schemas of `SET [SESSION | LOCAL] search_path TO/= a, b` (None for other statements)."""
    words = [word for word in statement.words if word not in ("SESSION", "LOCAL")]
    if words[:2] != ["SET", "SEARCH_PATH"]:
        return None
    schemas = []
    for token in statement.tokens[2:]:
        name = _identifier(token)
        if token.kind is Kind.STRING:
            name = token.text[1:-1]
        if name is not None and name not in ("to", "search_path", "session", "local"):
            schemas.append(name)
    return schemas


def _touches_tracking(planned: PlannedFile, table: tracking.TrackingTable) -> list[str]:
    """A file naming the runner's own tables (a vendored file altering "its" schema_migrations)
    would change what the runner records: refused, with the way out.

    Names are compared with their schema: `auth.schema_migrations` is another tool's table
    when the runner's is `public.schema_migrations`; a bare name means the runner's table
    when its schema is on the search path (public, or what the file SETs it to).
    """
    own = {table.name, table.history_name}
    search_path = ["public"]
    for statement in planned.analysis.statements:
        schemas = _search_path(statement)
        if schemas is not None:
            search_path = schemas
            continue
        for parts, _ in qualified_names(statement):
            if parts[-1] not in own:
                continue
            schema = parts[-2] if len(parts) > 1 else None
            if schema == table.schema or (schema is None and table.schema in search_path):
                return [
                    f"{planned.migration.name} line {statement.line}: names "
                    f"{'.'.join(parts)}, the runner's own tracking table ({table.label}): if it "
                    'means another tool\'s table, set `tracking_table = "schema.name"` for the '
                    "database to another name"
                ]
    return []


def _upstream_problems(plan: Plan, upstream: Target) -> list[str]:
    """Promotion order: a file reaches this environment only after it is applied upstream."""
    with upstream.connect() as conn:
        applied = tracking.read_applied(conn, upstream.tracking)
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
    up_to = migrations.version_of(options.target_version) if options.target_version else None
    plan = make_plan(conn, target, migrations, up_to)
    problems = list(plan.problems)
    # A dry run shows the whole promotion at once, before upstream has applied anything.
    if options.upstream is not None and plan.pending and not problems and not options.dry_run:
        problems += _upstream_problems(plan, options.upstream)
    if problems:
        raise PlanRefused(target.label, problems, plan.hint)
    return plan


# -- applying -------------------------------------------------------------------------------


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


@dataclass
class Session:
    """One locked run against one target: its connection, options, and the backup taken."""

    conn: psycopg.Connection
    target: Target
    options: RunOptions
    backup_path: Path | None = None
    watch: BlockerWatch | None = None

    def history(
        self, action: str, migration: Migration | None = None, **fields: Unpack[HistoryFields]
    ) -> None:
        """Append to the history (inside the caller's transaction, or on its own)."""
        if migration is not None:
            fields = {
                "version": migration.version,
                "name": migration.name,
                "checksum": migration.checksum,
                **fields,
            }
        if self.backup_path is not None:
            fields.setdefault("backup_path", str(self.backup_path))
        entry = HistoryEntry(
            action=action, environment=self.target.environment, actor=self.options.actor, **fields
        )
        tracking.record_history(self.conn, self.target.tracking, entry)

    def record(
        self,
        migration: Migration,
        status: Status,
        *,
        transactional: bool,
        execution_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        tracking.record_version(
            self.conn,
            self.target.tracking,
            migration,
            status=status,
            actor=self.options.actor,
            transactional=transactional,
            execution_ms=execution_ms,
            error=error,
        )

    def blocked_by(self, failure: ScriptError) -> str:
        """Who the file waited for, when it gave up waiting (empty otherwise)."""
        if failure.error.sqlstate not in WAIT_ERRORS or self.watch is None:
            return ""
        blockers = self.watch.blockers
        timeouts = self.target.timeouts
        limits = f"lock_timeout {timeouts.lock_s:g}s, statement_timeout {timeouts.statement_s:g}s"
        if blockers is None:
            return f" ({limits}; no blocking session was seen)"
        return f" Blocked by {blockers} ({limits})."

    def backup(self, version: int | None, action: str) -> None:
        """pg_dump a production target before `action` (unless the operator skips it)."""
        target, options = self.target, self.options
        if not target.production:
            return
        if options.skip_backup:
            options.say(f"{target.label}: production backup skipped at the operator's request")
            return
        if options.backup_dir is None:
            raise MigrationError(f"{target.label} is production and no backup directory is set")
        self.backup_path = backup.backup(
            target,
            options.backup_dir,
            server_major=self.conn.info.server_version // 10000,
            version=version,
        )
        options.say(f"{target.label}: backed up to {self.backup_path} before {action}")

    def run_file_sql(self, name: str, source: str, analysis: FileAnalysis) -> int:
        """Run a file in one execute (inside the caller's transaction); failures explained."""
        if not analysis.statements:
            return 0
        try:
            return run_script(self.conn, analysis.executable)
        except ScriptError as failure:
            statement = failed_statement(analysis.executed_statements, failure)
            explained = describe_failure(
                name,
                source,
                statement,
                failure,
                consequence="Rolled back whole: nothing from it is applied or recorded."
                + self.blocked_by(failure),
            )
            raise MigrationFailed(f"{self.target.label}: {explained}") from None

    def apply_file(self, planned: PlannedFile) -> AppliedFile:
        no_transaction = planned.analysis.mode is Mode.NO_TRANSACTION
        if self.watch is not None:
            self.watch.forget()
        try:
            if no_transaction:
                return self._statement_by_statement(planned)
            return self._in_transaction(planned)
        finally:
            # Whatever a file did to its session (search_path, role, temp tables) ends with it.
            conn = self.conn
            if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
                conn.execute("discard all")
                self.target.set_timeouts(conn)

    def _applied(self, planned: PlannedFile, *, elapsed: float, statements: int) -> AppliedFile:
        """The file's row and its history entry, inside the caller's transaction."""
        migration, mode = planned.migration, planned.analysis.mode
        transactional = mode is not Mode.NO_TRANSACTION
        self.record(migration, Status.APPLIED, transactional=transactional, execution_ms=elapsed)
        catalog.record(self.conn, self.target.tracking, migration.version)
        detail = f"{mode} mode, {statements} statements"
        approval = approval_for(self.target.approvals, migration)
        analysis = planned.analysis
        if (
            self.target.production
            and analysis.destructive
            and approval is not None
            and not analysis.allows_destructive
        ):
            detail += f"; destructive statements approved by configuration: {approval}"
        self.history("apply", migration, execution_ms=elapsed, detail=detail)
        return AppliedFile(migration.version, migration.name, mode, elapsed, statements)

    def _failed(self, migration: Migration, message: str) -> None:
        """A failure goes to the history in its own transaction, after the file's rollback."""
        with self.conn.transaction():
            self.history("fail", migration, detail=message)

    def _in_transaction(self, planned: PlannedFile) -> AppliedFile:
        migration, analysis = planned.migration, planned.analysis
        started = time.perf_counter()
        try:
            with self.conn.transaction():
                count = self.run_file_sql(migration.name, migration.sql, analysis)
                if self.conn.info.transaction_status != TransactionStatus.INTRANS:
                    raise MigrationError(
                        f"{self.target.label}: {migration.name} ended the runner's transaction "
                        "itself; check the database by hand before anything else runs"
                    )
                return self._applied(planned, elapsed=ms_since(started), statements=count)
        except MigrationFailed as failure:
            self._failed(migration, str(failure))
            raise

    def _left_dirty(self, migration: Migration, message: str) -> MigrationFailed:
        """Record why a non-transactional file stopped; the error to raise."""
        if self.conn.info.transaction_status != TransactionStatus.IDLE:
            self.conn.execute("rollback")  # the file's own transaction, aborted or left open
        self.record(migration, Status.DIRTY, transactional=False, error=message)
        self._failed(migration, message)
        return MigrationFailed(message)

    def _statement_by_statement(self, planned: PlannedFile) -> AppliedFile:
        migration, statements = planned.migration, planned.analysis.statements
        label = self.target.label
        # Dirty first, committed: if the process dies half-way, status shows it.
        self.record(migration, Status.DIRTY, transactional=False)
        started = time.perf_counter()
        for index, statement in enumerate(statements):
            try:
                run_script(self.conn, statement.text)
            except ScriptError as failure:
                explained = describe_failure(
                    migration.name,
                    migration.sql,
                    statement,
                    failure,
                    offset=statement.start,
                    consequence=(
                        f"It runs outside a transaction: the {index} statement(s) before it "
                        f"stay applied, and version {migration.version} is marked dirty."
                        + self.blocked_by(failure)
                    ),
                )
                raise self._left_dirty(migration, f"{label}: {explained}") from None
        if self.conn.info.transaction_status != TransactionStatus.IDLE:
            message = (
                f"{label}: {migration.name} opened a transaction and never committed it: "
                f"that part was rolled back and version {migration.version} is marked dirty"
            )
            raise self._left_dirty(migration, message)
        elapsed = ms_since(started)
        with self.conn.transaction():
            return self._applied(planned, elapsed=elapsed, statements=len(statements))


@contextmanager
def locked_session(
    target: Target, options: RunOptions, conn: psycopg.Connection | None = None
) -> Iterator[Session]:
    """A connection to `target` holding its migration lock, its session timeouts set, and
    a watch on who blocks it (the start of every run that changes the database)."""
    with ExitStack() as stack:
        if conn is None:
            conn = stack.enter_context(target.connect())
        stack.enter_context(migration_lock(target, timeout_s=options.lock_timeout_s))
        target.set_timeouts(conn)
        watch = stack.enter_context(BlockerWatch(target, conn.info.backend_pid))
        yield Session(conn, target, options, watch=watch)


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
        with locked_session(target, options, conn) as session:
            tracking.ensure_tracking(conn, target.tracking)
            plan = _checked_plan(conn, target, migrations, options)
            if plan.pending:
                session.backup(plan.current_version, "applying")
            applied = []
            for planned in plan.pending:
                options.say(
                    f"{target.label}: applying {planned.migration.name} ({planned.analysis.mode})"
                )
                applied.append(session.apply_file(planned))
    return ApplyReport(
        target.label,
        target.masked_url,
        tuple(applied),
        _applied_count(plan),
        backup=session.backup_path,
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
