"""sync_log bookkeeping: a RUNNING row before any data, the outcome after."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.loading.report import FAILED, RUNNING, SyncReport

ABANDONED = (
    "abandoned: its database session ended without recording an outcome "
    "(process killed or connection lost); nothing of it was committed"
)
MAX_ERROR_CHARS = 4000


def close_abandoned(conn: psycopg.Connection) -> None:
    """Mark FAILED the RUNNING rows whose database session is gone (a killed sync): once per
    run, before its first session (SessionHost)."""
    with conn.transaction():
        conn.execute(
            "update sync_log l set status = %s, completed_at = clock_timestamp(),"
            " error_message = %s where l.status = %s and not exists ("
            " select 1 from pg_stat_activity a where a.pid = l.backend_pid"
            " and (a.backend_start is null or a.backend_start = l.backend_start))",
            (FAILED, ABANDONED, RUNNING),
        )


def backend_identity(conn: psycopg.Connection) -> tuple[int, datetime]:
    """(pid, backend_start) of the connection's backend: what a RUNNING row records so that
    close_abandoned can tell whether its session is gone. Read once per connection."""
    row = conn.execute(
        "select pid, backend_start from pg_stat_activity where pid = pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def start(
    conn: psycopg.Connection,
    report: SyncReport,
    scope: Mapping[str, str],
    identity: tuple[int, datetime] | None = None,
) -> int:
    """Insert the RUNNING row and commit it, so even a crash of the process leaves a trace.

    One statement in autocommit (one round trip). On a SessionHost's connection it commits
    without waiting for the WAL flush: the row is visible to every other session at once,
    and only a crash of the server itself could lose it, before the session's own commit
    (which flushes it) has written anything. identity: the connection's backend_identity,
    read once per connection by the caller (a look-up of pg_stat_activity per session cost
    about half a millisecond); None reads it in the same statement.
    """
    values = (
        report.run_id,
        report.source,
        report.table,
        Jsonb(dict(scope)),
        report.partition,
        report.full,
        RUNNING,
    )
    columns = (
        "insert into sync_log (run_id, source, target_table, scope, partition_key, full_sync,"
        " status, backend_pid, backend_start)"
    )
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        if identity is None:
            cur = conn.execute(
                f"{columns} select %s, %s, %s, %s, %s, %s, %s, pid, backend_start"
                " from pg_stat_activity where pid = pg_backend_pid() returning id",
                values,
            )
        else:
            cur = conn.execute(
                f"{columns} values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
                (*values, *identity),
            )
        row = cur.fetchone()
    finally:
        conn.autocommit = autocommit
    assert row is not None
    return int(row[0])


FINISH = (
    "update sync_log set status = %(status)s, records_processed = %(records_in)s,"
    " inserted = %(inserted)s, updated = %(updated)s, unchanged = %(unchanged)s,"
    " duplicates = %(duplicates)s, rejected = %(rejected)s,"
    " soft_deleted = %(soft_deleted)s, users_created = %(users_created)s,"
    " users_updated = %(users_updated)s, error_message = %(error)s, details = %(details)s,"
    " completed_at = clock_timestamp() where id = %(id)s"
)


def finish(conn: psycopg.Connection, report: SyncReport, details: dict[str, Any]) -> None:
    """Record the outcome (any status) with the report's counts."""
    conn.execute(FINISH, finish_params(report, details))


def finish_params(report: SyncReport, details: dict[str, Any]) -> dict[str, Any]:
    """FINISH's parameters: the report's status and counts, its error, the details."""
    return {
        "status": report.status,
        "records_in": report.records_in,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "soft_deleted": report.soft_deleted,
        "users_created": report.users_created,
        "users_updated": report.users_updated,
        "error": (report.error or report.soft_delete_refused or "")[:MAX_ERROR_CHARS] or None,
        "details": Jsonb(details),
        "id": report.sync_log_id,
    }
