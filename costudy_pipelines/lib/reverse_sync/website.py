"""Reading the website database: changed rows in bounded chunks, with their fingerprints.

The website owns its database; we only read it. Each read is one REPEATABLE READ, READ ONLY
transaction streaming through a server-side cursor, so a read sees one snapshot and holds at
most a chunk in memory. The fingerprint is computed by the website's server, in SQL, so that
the discrepancy check can compare fingerprints without pulling whole rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from costudy_pipelines.lib.reverse_sync.events import EventType

Row = dict[str, Any]


@dataclass(frozen=True, order=True)
class Position:
    """A place in a table's (updated_at, id) order: the sensor's cursor per table."""

    updated_at: datetime
    id: int


def fingerprint_sql(event: EventType) -> sql.Composed:
    """SHA-256 (hex) of the mapping version and the synced columns, as the website computes it."""
    columns = sql.SQL(", ").join(sql.Identifier("t", column) for column in event.source_columns)
    return sql.SQL(
        "encode(sha256(convert_to(jsonb_build_array({version}::text, {columns})::text, 'UTF8')),"
        " 'hex')"
    ).format(version=sql.Literal(event.version), columns=columns)


def _select(event: EventType) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.Identifier("t", column)
        for column in dict.fromkeys(("id", "updated_at", *event.source_columns))
    )
    return sql.SQL("select {columns}, {fingerprint} as fingerprint from {table} as t").format(
        columns=columns, fingerprint=fingerprint_sql(event), table=sql.Identifier(event.table)
    )


def _stream(
    conn: psycopg.Connection, query: sql.Composed, params: dict[str, Any], chunk_size: int
) -> Iterator[list[Row]]:
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        with conn.cursor(name="reverse_sync_read", row_factory=dict_row) as cursor:
            cursor.itersize = chunk_size
            cursor.execute(query, params)
            while rows := cursor.fetchmany(chunk_size):
                yield rows


def read_changed(
    conn: psycopg.Connection, event: EventType, since: datetime | None, chunk_size: int
) -> Iterator[list[Row]]:
    """Rows updated at or after `since` (every row when None), in (updated_at, id) order."""
    where = sql.SQL("") if since is None else sql.SQL(" where t.updated_at >= %(since)s")
    query = sql.Composed([_select(event), where, sql.SQL(" order by t.updated_at, t.id")])
    return _stream(conn, query, {"since": since}, chunk_size)


def read_ids(
    conn: psycopg.Connection, event: EventType, ids: Iterable[int], chunk_size: int
) -> Iterator[list[Row]]:
    """The rows with these ids (ids the website no longer has are simply absent)."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), chunk_size):
        batch = wanted[start : start + chunk_size]
        query = sql.Composed([_select(event), sql.SQL(" where t.id = any(%(ids)s) order by t.id")])
        yield from _stream(conn, query, {"ids": batch}, chunk_size)


def read_fingerprints(
    conn: psycopg.Connection, event: EventType, chunk_size: int
) -> Iterator[list[tuple[str, str]]]:
    """(source id, fingerprint) of every row, in id order: what the platform must reflect."""
    query = sql.SQL("select t.id::text, {fingerprint} from {table} as t order by t.id").format(
        fingerprint=fingerprint_sql(event), table=sql.Identifier(event.table)
    )
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        with conn.cursor(name="reverse_sync_fingerprints") as cursor:
            cursor.itersize = chunk_size
            cursor.execute(query)
            while rows := cursor.fetchmany(chunk_size):
                yield rows


def clock(conn: psycopg.Connection) -> datetime:
    """The website server's current time (the read window is measured on its clock)."""
    row = conn.execute("select now()").fetchone()
    assert row is not None  # SELECT without FROM returns its one row
    return row[0]


def newest_position(
    conn: psycopg.Connection, event: EventType, after: Position | None
) -> Position | None:
    """The last row in (updated_at, id) order past `after`, or None when nothing is newer."""
    query = sql.SQL(
        "select t.updated_at, t.id from {table} as t {where} "
        "order by t.updated_at desc, t.id desc limit 1"
    ).format(
        table=sql.Identifier(event.table),
        where=sql.SQL("" if after is None else "where (t.updated_at, t.id) > (%s, %s)"),
    )
    params = () if after is None else (after.updated_at, after.id)
    row = conn.execute(query, params).fetchone()
    return None if row is None else Position(row[0], row[1])


def missing_columns(conn: psycopg.Connection, event: EventType) -> list[str] | None:
    """The columns the sync reads that the table lacks ([] when none), None when no table."""
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = current_schema() and table_name = %s",
        (event.table,),
    ).fetchall()
    if not rows:
        return None
    present = {name for (name,) in rows}
    return [c for c in ("id", "updated_at", *event.source_columns) if c not in present]
