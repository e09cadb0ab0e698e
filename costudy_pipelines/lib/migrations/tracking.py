"""The runner's own tables in each database: what is applied, and the history of every action.

`public.schema_migrations` holds one row per version that is applied (or baselined, or left
dirty by a non-transactional file that stopped part-way). `public.schema_migrations_history`
is append-only: every apply, failure, rollback, repair and baseline, with who, when, how long,
the checksums involved and the backup taken. Names are always schema-qualified because a
migration may change the session's search_path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

import psycopg
from psycopg.rows import class_row

from costudy_pipelines.lib.migrations.discovery import Migration

SCHEMA = "public"
TABLE = "schema_migrations"
HISTORY_TABLE = "schema_migrations_history"
# Everything the runner creates, left out of catalog drift comparisons.
TRACKING_RELATIONS = frozenset(
    {
        TABLE,
        f"{TABLE}_pkey",
        HISTORY_TABLE,
        f"{HISTORY_TABLE}_pkey",
        f"{HISTORY_TABLE}_id_seq",
    }
)

TRACKING_DDL = f"""
create table if not exists {SCHEMA}.{TABLE} (
    version       integer primary key,
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
comment on table {SCHEMA}.{TABLE} is
    'Managed by costudy migrate: one row per applied, baselined or dirty migration version.';
create table if not exists {SCHEMA}.{HISTORY_TABLE} (
    id                bigint generated always as identity primary key,
    at                timestamptz not null default now(),
    action            text not null
        check (action in ('apply', 'fail', 'rollback', 'repair', 'baseline')),
    version           integer,
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
comment on table {SCHEMA}.{HISTORY_TABLE} is
    'Managed by costudy migrate: append-only audit of every apply, failure, rollback, repair.';
"""


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


def tracking_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass(%s)", (f"{SCHEMA}.{TABLE}",)).fetchone()
    return row is not None and row[0] is not None


def ensure_tracking(conn: psycopg.Connection) -> None:
    conn.execute(TRACKING_DDL)


def read_applied(conn: psycopg.Connection) -> dict[int, AppliedRow]:
    """Every recorded version; empty when the database was never tracked."""
    if not tracking_exists(conn):
        return {}
    with conn.cursor(row_factory=class_row(AppliedRow)) as cursor:
        rows = cursor.execute(
            f"select version, name, checksum, status, transactional, applied_at, applied_by,"
            f" database_user, execution_ms, error from {SCHEMA}.{TABLE} order by version"
        ).fetchall()
    return {row.version: row for row in rows}


def record_version(
    conn: psycopg.Connection,
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
        f"""
        insert into {SCHEMA}.{TABLE}
            (version, name, checksum, status, transactional, applied_by, execution_ms, error)
        values (%s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (version) do update set
            name = excluded.name, checksum = excluded.checksum, status = excluded.status,
            transactional = excluded.transactional, applied_at = now(),
            applied_by = excluded.applied_by, database_user = excluded.database_user,
            execution_ms = excluded.execution_ms, error = excluded.error
        """,
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


def forget_version(conn: psycopg.Connection, version: int) -> None:
    conn.execute(f"delete from {SCHEMA}.{TABLE} where version = %s", (version,))


def accept_checksum(conn: psycopg.Connection, version: int, name: str, checksum: str) -> None:
    conn.execute(
        f"update {SCHEMA}.{TABLE} set checksum = %s, name = %s where version = %s",
        (checksum, name, version),
    )


def mark_applied(conn: psycopg.Connection, version: int) -> None:
    conn.execute(
        f"update {SCHEMA}.{TABLE} set status = %s, error = null where version = %s",
        (Status.APPLIED.value, version),
    )


def record_history(conn: psycopg.Connection, entry: HistoryEntry) -> None:
    conn.execute(
        f"""
        insert into {SCHEMA}.{HISTORY_TABLE}
            (action, environment, actor, version, name, checksum, previous_checksum,
             execution_ms, backup_path, detail)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
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
