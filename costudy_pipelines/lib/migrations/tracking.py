"""The runner's own tables in each database: what is applied, and the history of every action.

The tracking table (`public.schema_migrations` unless `tracking_table = "schema.name"` says
otherwise) holds one row per version that is applied (or baselined, or left dirty by a
non-transactional file that stopped part-way). `<name>_history` beside it is append-only:
every apply, failure, rollback, repair and baseline, with who, when, how long, the checksums
involved and the backup taken. Names are always schema-qualified because a migration may
change the session's search_path.

Other tools use the same table names (golang-migrate and dbmate `schema_migrations`): an
existing table of another shape is refused with the tool that seems to own it, never altered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from costudy_pipelines.lib.migrations.discovery import Migration
from costudy_pipelines.lib.migrations.errors import ConfigError, MigrationError

DEFAULT_TABLE = "public.schema_migrations"
_COLUMNS = (
    "version, name, checksum, status, transactional, applied_at, applied_by, database_user,"
    " execution_ms, error"
)
_HISTORY_COLUMNS = frozenset({"id", "at", "action", "version", "environment", "actor"})
# Keyed by "is it the main table": the columns ours has.
_OWN_COLUMNS_FOR = {
    True: frozenset(column.strip() for column in _COLUMNS.split(",")),
    False: _HISTORY_COLUMNS,
}
# Columns that give away the tool owning a table: checked in order, first match names it.
_FOREIGN_SHAPES = (
    (frozenset({"version", "dirty"}), "golang-migrate"),
    (frozenset({"installed_rank", "version", "script", "success"}), "Flyway"),
    (frozenset({"version"}), "dbmate or Rails"),
)

_DDL = """
create table if not exists {table} (
    version       bigint primary key,
    name          text not null,
    checksum      text not null,
    status        text not null check (status in ('applied', 'baseline', 'dirty')),
    transactional boolean not null,
    applied_at    timestamptz not null default now(),
    applied_by    text not null,
    database_user text not null default current_user,
    execution_ms  numeric(12, 1),
    error         text
);
-- The live catalog right after the version was applied: drift is compared at the version
-- two environments have in common, even when one of them has moved on since.
alter table {table} add column if not exists catalog jsonb;
comment on table {table} is
    'Managed by costudy migrate: one row per applied, baselined or dirty migration version.';
create table if not exists {history} (
    id                bigint generated always as identity primary key,
    at                timestamptz not null default now(),
    action            text not null
        check (action in ('apply', 'fail', 'rollback', 'repair', 'baseline')),
    version           bigint,
    name              text,
    environment       text not null,
    checksum          text,
    previous_checksum text,
    execution_ms      numeric(12, 1),
    actor             text not null,
    database_user     text not null default current_user,
    backup_path       text,
    detail            text
);
comment on table {history} is
    'Managed by costudy migrate: append-only audit of every apply, failure, rollback, repair.';
"""
# Tables made before versions could be timestamps had integer versions: widened in place.
_WIDEN = """
select c.relname from pg_attribute a
  join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = %s and c.relname = any(%s) and a.attname = 'version'
   and a.atttypid = 'integer'::regtype
"""


@dataclass(frozen=True)
class TrackingTable:
    """Where the runner records versions: a schema and a table name (history beside it)."""

    schema: str = "public"
    name: str = "schema_migrations"

    @classmethod
    def parse(cls, text: str, where: str) -> TrackingTable:
        schema, dot, name = text.partition(".")
        if not dot:
            schema, name = "public", text
        if not schema or not name or "." in name:
            raise ConfigError(
                f"{where}: tracking_table must be `name` or `schema.name`, not {text!r}"
            )
        return cls(schema, name)

    @property
    def history_name(self) -> str:
        return f"{self.name}_history"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def history(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.history_name)

    @property
    def relations(self) -> frozenset[str]:
        """Everything the runner creates in `schema`, left out of catalog drift comparisons."""
        return frozenset(
            {
                self.name,
                f"{self.name}_pkey",
                self.history_name,
                f"{self.history_name}_pkey",
                f"{self.history_name}_id_seq",
            }
        )

    def format(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(table=self.table, history=self.history)


DEFAULT = TrackingTable()


class Status(StrEnum):
    APPLIED = "applied"
    BASELINE = "baseline"
    DIRTY = "dirty"


@dataclass(frozen=True)
class AppliedRow:
    version: int
    name: str
    checksum: str
    status: str
    transactional: bool
    applied_at: datetime
    applied_by: str
    database_user: str
    execution_ms: Decimal | None
    error: str | None


@dataclass(frozen=True)
class HistoryEntry:
    action: str
    environment: str
    actor: str
    version: int | None = None
    name: str | None = None
    checksum: str | None = None
    previous_checksum: str | None = None
    execution_ms: float | None = None
    backup_path: str | None = None
    detail: str | None = None


class HistoryFields(TypedDict, total=False):
    """The optional fields of a HistoryEntry, as keyword arguments."""

    version: int | None
    name: str | None
    checksum: str | None
    previous_checksum: str | None
    execution_ms: float | None
    backup_path: str | None
    detail: str | None


_COLUMNS_OF = """
select a.attname from pg_attribute a
  join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
"""


def _columns(conn: psycopg.Connection, schema: str, name: str) -> set[str]:
    return {row[0] for row in conn.execute(_COLUMNS_OF, (schema, name)).fetchall()}


def table_columns(conn: psycopg.Connection, table: TrackingTable) -> set[str]:
    """The columns of `table` (empty: it does not exist)."""
    return _columns(conn, table.schema, table.name)


def foreign_owner(columns: set[str]) -> str:
    """The tool whose tracking table has these columns, as well as can be told."""
    return next((tool for shape, tool in _FOREIGN_SHAPES if shape <= columns), "another tool")


def tracking_exists(conn: psycopg.Connection, table: TrackingTable = DEFAULT) -> bool:
    """Whether the table exists and is ours; MigrationError when another tool owns it."""
    for name in (table.name, table.history_name):
        columns = _columns(conn, table.schema, name)
        if columns and not columns >= _OWN_COLUMNS_FOR[name == table.name]:
            owner = foreign_owner(columns)
            listed = ", ".join(sorted(columns))
            raise MigrationError(
                f"{table.schema}.{name} exists but is not costudy's tracking table: its columns "
                f"({listed}) look like {owner}'s. Nothing was changed. Point costudy at its own "
                'table with `tracking_table = "schema.name"` under the database in the '
                "environments file; `costudy migrate init --from golang-migrate|flyway` then "
                "adopts the other tool's history"
            )
    return bool(_columns(conn, table.schema, table.name))


def ensure_tracking(conn: psycopg.Connection, table: TrackingTable = DEFAULT) -> None:
    tracking_exists(conn, table)  # refuses a foreign table before anything is created
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(table.schema)))
    conn.execute(table.format(_DDL))
    narrow = conn.execute(_WIDEN, (table.schema, [table.name, table.history_name])).fetchall()
    for (relation,) in narrow:
        conn.execute(
            sql.SQL("alter table {} alter column version type bigint").format(
                sql.Identifier(table.schema, relation)
            )
        )


def read_applied(conn: psycopg.Connection, table: TrackingTable = DEFAULT) -> dict[int, AppliedRow]:
    """Every recorded version; empty when the database was never tracked."""
    if not tracking_exists(conn, table):
        return {}
    with conn.cursor(row_factory=class_row(AppliedRow)) as cursor:
        rows = cursor.execute(
            table.format(f"select {_COLUMNS} from {{table}} order by version")
        ).fetchall()
    return {row.version: row for row in rows}


def record_version(
    conn: psycopg.Connection,
    table: TrackingTable,
    migration: Migration,
    *,
    status: Status,
    transactional: bool,
    actor: str,
    execution_ms: float | None = None,
    error: str | None = None,
) -> None:
    """Insert or overwrite the row of the migration's version (dirty becomes applied this way)."""
    conn.execute(
        table.format(
            """
            insert into {table}
                (version, name, checksum, status, transactional, applied_by, execution_ms, error)
            values (%s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (version) do update set
                name = excluded.name, checksum = excluded.checksum, status = excluded.status,
                transactional = excluded.transactional, applied_at = now(),
                applied_by = excluded.applied_by, database_user = excluded.database_user,
                execution_ms = excluded.execution_ms, error = excluded.error
            """
        ),
        (
            migration.version,
            migration.name,
            migration.checksum,
            status.value,
            transactional,
            actor,
            execution_ms,
            error,
        ),
    )


def forget_version(conn: psycopg.Connection, table: TrackingTable, version: int) -> None:
    conn.execute(table.format("delete from {table} where version = %s"), (version,))


def accept_checksum(
    conn: psycopg.Connection, table: TrackingTable, version: int, name: str, checksum: str
) -> None:
    conn.execute(
        table.format("update {table} set checksum = %s, name = %s where version = %s"),
        (checksum, name, version),
    )


def mark_applied(conn: psycopg.Connection, table: TrackingTable, version: int) -> None:
    conn.execute(
        table.format("update {table} set status = %s, error = null where version = %s"),
        (Status.APPLIED.value, version),
    )


def record_history(conn: psycopg.Connection, table: TrackingTable, entry: HistoryEntry) -> None:
    conn.execute(
        table.format(
            """
            insert into {history}
                (action, environment, actor, version, name, checksum, previous_checksum,
                 execution_ms, backup_path, detail)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """
        ),
        (
            entry.action,
            entry.environment,
            entry.actor,
            entry.version,
            entry.name,
            entry.checksum,
            entry.previous_checksum,
            entry.execution_ms,
            entry.backup_path,
            entry.detail,
        ),
    )
