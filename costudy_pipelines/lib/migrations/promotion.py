"""Several environments of one database: status, drift between them, and promotion in order.

Drift comes in two kinds:
(a) the applied sets disagree: a later environment (prod) has a version the earlier one (dev)
    does not, or the same version was applied from different file contents. An earlier
    environment being *ahead* is not drift: that is the next promotion, shown as pending;
(b) their catalogs differ at the highest version both have applied: somebody changed one of
    them outside migrations. Each apply keeps the catalog with the version's row, so while a
    promotion is pending (dev at 5, prod at 4) prod's live catalog is compared with dev's as
    it was at 4: a manual change in prod is never hidden by the next release.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import psycopg

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import tracking
from costudy_pipelines.lib.migrations.analysis import Mode, analyse
from costudy_pipelines.lib.migrations.catalog import (
    Catalog,
    compare_catalogs,
    recorded,
    snapshot,
)
from costudy_pipelines.lib.migrations.config import DatabaseMigrations, MigrationConfig
from costudy_pipelines.lib.migrations.discovery import Migration, MigrationSet, unknown_placeholders
from costudy_pipelines.lib.migrations.errors import ConfigError, MigrationError
from costudy_pipelines.lib.migrations.lint import Severity, unknown_acknowledgements
from costudy_pipelines.lib.migrations.lint import lint as lint_sql
from costudy_pipelines.lib.migrations.runner import (
    PROBLEM_STATES,
    ApplyReport,
    RunOptions,
    State,
    VersionState,
    apply,
    approval_for,
    file_problems,
    version_states,
)
from costudy_pipelines.lib.migrations.target import Target


@dataclass(frozen=True)
class EnvironmentStatus:
    target: Target
    states: tuple[VersionState, ...] = ()
    catalog: Catalog | None = None
    tracked: bool = False
    error: str | None = None  # the database could not be read
    catalogs: dict[int, Catalog] = field(default_factory=dict)  # kept with each version

    def catalog_at(self, version: int) -> Catalog | None:
        """The catalog as it was right after `version`: live when that is the current one."""
        if version == self.current_version:
            return self.catalog
        return self.catalogs.get(version)

    @property
    def applied(self) -> dict[int, str]:
        """version -> recorded checksum, for every recorded version."""
        return {s.version: s.recorded.checksum for s in self.states if s.recorded is not None}

    @property
    def current_version(self) -> int | None:
        return max(self.applied, default=None)

    def count(self, *states: State) -> int:
        return sum(1 for state in self.states if state.state in states)

    @property
    def problems(self) -> list[str]:
        if self.error:
            return [self.error]
        highest = self.current_version
        return [
            f"{self.target.label}: {state.problem(highest)}"
            for state in self.states
            if state.state in PROBLEM_STATES
        ]


def inspect(
    target: Target, migrations: MigrationSet, *, with_catalog: bool = True
) -> EnvironmentStatus:
    """Read-only: each version's state and (optionally) the live catalog."""
    try:
        with target.connect() as conn:
            tracked = tracking.tracking_exists(conn, target.tracking)
            applied = tracking.read_applied(conn, target.tracking)
            live = snapshot(conn, target.tracking) if with_catalog else None
            kept = recorded(conn, target.tracking) if with_catalog and tracked else {}
    except (pg.DatabaseConfigError, psycopg.Error, MigrationError) as exc:
        return EnvironmentStatus(target, error=f"{target.label}: {exc}")
    return EnvironmentStatus(
        target, tuple(version_states(migrations, applied)), live, tracked=tracked, catalogs=kept
    )


@dataclass(frozen=True)
class Drift:
    kind: str  # "applied set", "checksum", "catalog"
    subject: str
    detail: str
    between: str = ""  # "dev → prod"

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


def drift_between(upstream: EnvironmentStatus, downstream: EnvironmentStatus) -> list[Drift]:
    """How `downstream` (later in promotion) disagrees with `upstream`."""
    if upstream.error or downstream.error:
        return []
    up, down = upstream.target.environment, downstream.target.environment
    up_applied, down_applied = upstream.applied, downstream.applied
    between = f"{up} → {down}"
    found = [
        Drift("applied set", f"version {v}", f"applied in {down} but not in {up}", between)
        for v in sorted(down_applied.keys() - up_applied.keys())
    ]
    found += [
        Drift(
            "checksum",
            f"version {v}",
            f"{up} applied checksum {up_applied[v]}, {down} applied {down_applied[v]}",
            between,
        )
        for v in sorted(down_applied.keys() & up_applied.keys())
        if up_applied[v] != down_applied[v]
    ]
    common = max(down_applied.keys() & up_applied.keys(), default=None)
    if found or common is None:
        return found
    left, right = upstream.catalog_at(common), downstream.catalog_at(common)
    if left is None or right is None:
        return found  # not read, or applied before catalogs were kept with versions
    at = "" if up_applied == down_applied else f" (at version {common}, the last both applied)"
    return [
        Drift(
            "catalog",
            f"{difference.kind} {difference.name}",
            difference.describe(up, down) + at,
            between,
        )
        for difference in compare_catalogs(left, right)
    ]


def drift_across(statuses: Sequence[EnvironmentStatus]) -> list[Drift]:
    """Drift between each environment and the next one in promotion order."""
    return [
        drift
        for upstream, downstream in itertools.pairwise(statuses)
        for drift in drift_between(upstream, downstream)
    ]


@dataclass(frozen=True)
class DatabaseStatus:
    database: str
    environments: tuple[EnvironmentStatus, ...]
    drift: tuple[Drift, ...]
    files: int = 0
    discovery_error: str | None = None

    @property
    def environment_problems(self) -> list[str]:
        """Problems of the folder and of each environment (drift aside), each with its label."""
        found = [self.discovery_error] if self.discovery_error else []
        for environment in self.environments:
            found += environment.problems
        return found

    @property
    def problems(self) -> list[str]:
        drift = [f"{self.database} {drift.between}: drift {drift}" for drift in self.drift]
        return self.environment_problems + drift

    @property
    def pending(self) -> int:
        return sum(environment.count(State.PENDING) for environment in self.environments)


def _selected(database: DatabaseMigrations, environments: Sequence[str]) -> list[Target]:
    chosen = [database.environment(name) for name in environments] or database.environments
    targets = [
        database.target(environment)
        for environment in database.environments
        if environment in chosen
    ]
    _refuse_shared_databases(targets)
    return targets


def _refuse_shared_databases(targets: list[Target]) -> None:
    """Two environments on one database would make promotion and drift meaningless."""
    seen: dict[tuple, Target] = {}
    for target in targets:
        url = pg.parse_url(target.url, source=target.source)
        key = (url.host, url.port or 5432, url.database)
        if key in seen:
            raise ConfigError(
                f"{seen[key].label} and {target.label} point at the same database "
                f"({target.masked_url}): give each environment its own"
            )
        seen[key] = target


def database_status(
    database: DatabaseMigrations, environments: Sequence[str] = (), *, with_catalog: bool = True
) -> DatabaseStatus:
    """Every selected environment's state and the drift between consecutive ones."""
    try:
        migrations = database.discover()
    except MigrationError as exc:
        # Without the files every applied version would look "missing": report the cause only.
        return DatabaseStatus(database.name, (), (), discovery_error=str(exc))
    statuses = tuple(
        inspect(target, migrations, with_catalog=with_catalog)
        for target in _selected(database, environments)
    )
    return DatabaseStatus(database.name, statuses, tuple(drift_across(statuses)), len(migrations))


def promote(
    config: MigrationConfig,
    database: DatabaseMigrations,
    environments: Sequence[str] = (),
    options: RunOptions | None = None,
) -> Iterator[ApplyReport]:
    """Apply pending files environment by environment, in promotion order; the first failure
    raises and stops everything after it."""
    options = options or RunOptions(lock_timeout_s=config.lock_timeout_s)
    migrations = database.discover()
    for target in _selected(database, environments):
        upstream = database.upstream(target.environment)
        yield apply(
            target,
            migrations,
            replace(
                options,
                upstream=database.target(upstream) if upstream else None,
                backup_dir=options.backup_dir or config.backup_dir,
            ),
        )


@dataclass(frozen=True)
class LintReport:
    """`problems` fail validation (refusals, errors); `warnings` only with --strict."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    acknowledged: tuple[str, ...] = ()


def lint(database: DatabaseMigrations) -> LintReport:
    """Problems in the files alone, before any database sees them: what CI runs pre-deploy.

    Destructive statements count when the database has a production environment: every file
    reaches production eventually. The lock and caller rules (lint.py) look at up files
    after `lint_after`: earlier ones are applied everywhere, their findings are history.
    """
    try:
        migrations = database.discover()
    except MigrationError as exc:
        return LintReport((str(exc),))
    production = next((env for env in database.environments if env.production), None)
    label = f"{database.name}/{production.name}" if production else None
    approvals = production.approvals if production else {}
    problems, warnings, acknowledged = [], [], []
    problems += _stale_approvals(database, migrations)
    for migration in migrations:
        analysis = analyse(migration.sql, no_transaction=migration.no_transaction)
        problems += file_problems(
            migration.name, analysis, production=label, approval=approval_for(approvals, migration)
        )
        problems += _placeholder_problems(database, migration)
        if migration.down_sql is not None:
            down = analyse(migration.down_sql)
            problems += [f"{migration.down_name} {finding}" for finding in down.refusals]
            if down.mode is Mode.NO_TRANSACTION:
                problems.append(f"{migration.down_name}: a down file always runs in a transaction")
        problems += [f"{migration.name}: {u}" for u in unknown_acknowledgements(migration.sql)]
        if database.lint_after is not None and migration.version <= database.lint_after:
            continue
        for finding in lint_sql(migration.sql, migration.syntax.pattern):
            line = f"{migration.name} {finding}"
            if finding.acknowledged:
                acknowledged.append(line)
            elif finding.rule.severity is Severity.ERROR:
                problems.append(line)
            else:
                warnings.append(line)
    return LintReport(tuple(problems), tuple(warnings), tuple(acknowledged))


def _placeholder_problems(database: DatabaseMigrations, migration: Migration) -> list[str]:
    """Placeholders of the file (up and down) an environment has no value for."""
    problems = []
    for environment in database.environments:
        known = database.placeholder_names(environment)
        for name, text in (
            (migration.name, migration.sql),
            (migration.down_name, migration.down_sql),
        ):
            if text is None:
                continue
            unknown = unknown_placeholders(text, known, migration.syntax)
            if unknown:
                problems.append(
                    f"{name}: no value for placeholder {', '.join(unknown)} in "
                    f"{database.name}/{environment.name} (configured: "
                    f"{', '.join(sorted(known)) or 'none'})"
                )
    return problems


def _stale_approvals(database: DatabaseMigrations, migrations: MigrationSet) -> list[str]:
    """An approval naming no file would approve a future file of that name unseen."""
    names = {m.name for m in migrations} | {m.name.split("/")[0] for m in migrations}
    return [
        f"{database.name}/{environment.name}: allow_destructive names {file}, which is not a "
        f"migration in {database.folder}"
        for environment in database.environments
        for file in environment.approvals
        if file not in names
    ]
