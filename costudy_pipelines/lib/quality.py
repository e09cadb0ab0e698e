"""Data-quality queries over the warehouse: each returns a count and up to 20 sample keys.

Set-based SQL only; nothing pulls a table into Python. Table names come from LoadSpec
(code, not input) and are quoted as identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import psycopg
from psycopg import sql

SAMPLES = 20


@dataclass
class Finding:
    count: int
    samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count == 0


def _finding(conn: psycopg.Connection, query: sql.Composed, params: dict | None = None) -> Finding:
    rows = conn.execute(query, params or {}).fetchall()
    total = rows[0][0] if rows else 0
    return Finding(int(total or 0), [str(row[1]) for row in rows if row[1] is not None][:SAMPLES])


def duplicate_emails(conn: psycopg.Connection) -> Finding:
    """Users whose emails are equal once normalised (lower-case, trimmed): must be none."""
    return _finding(
        conn,
        sql.SQL(
            """
            with normalised as (
                select lower(btrim(email)) as email, count(*) as n from users group by 1
            )
            select count(*) over (), email from normalised where n > 1 limit {limit}
            """
        ).format(limit=sql.Literal(SAMPLES)),
    )


def unnormalised_emails(conn: psycopg.Connection) -> Finding:
    return _finding(
        conn,
        sql.SQL(
            "select count(*) over (), email from users where email <> lower(btrim(email)) "
            "limit {limit}"
        ).format(limit=sql.Literal(SAMPLES)),
    )


def _key_text(key_column: str, hashed: bool) -> sql.Composable:
    """The key as readable text: row hashes (bytea) in hex."""
    key = sql.Identifier(key_column)
    return sql.SQL("encode({}, 'hex')").format(key) if hashed else key


def duplicate_keys(conn: psycopg.Connection, table: str, key_column: str, hashed: bool) -> Finding:
    """Source rows sharing an external id / row hash (the unique index forbids it; this
    catches the index being dropped or a load path that bypasses it)."""
    return _finding(
        conn,
        sql.SQL(
            "select count(*) over (), {key} from {table} group by {key} "
            "having count(*) > 1 limit {limit}"
        ).format(
            key=_key_text(key_column, hashed),
            table=sql.Identifier(table),
            limit=sql.Literal(SAMPLES),
        ),
    )


def orphan_rows(conn: psycopg.Connection, table: str, key_column: str, hashed: bool) -> Finding:
    """Source rows whose user is missing, or whose email is not their user's email."""
    return _finding(
        conn,
        sql.SQL(
            """
            select count(*) over (), {key}
            from {table} s left join users u on u.id = s.user_id
            where u.id is null or u.email <> s.email
            limit {limit}
            """
        ).format(
            key=_key_text(key_column, hashed),
            table=sql.Identifier(table),
            limit=sql.Literal(SAMPLES),
        ),
    )


@dataclass
class RunCounts:
    sessions: int
    records_in: int
    accounted: int  # inserted + updated + unchanged + duplicates + rejected
    rejected: int
    rejects_recorded: int  # rows in sync_rejects seen by this run

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.records_in if self.records_in else 0.0


def run_counts(conn: psycopg.Connection, source: str, run_id: str) -> RunCounts:
    """What the sessions of one run took in, and where each record went."""
    row = conn.execute(
        """
        select count(*),
               coalesce(sum(records_processed), 0),
               coalesce(sum(inserted + updated + unchanged + duplicates + rejected), 0),
               coalesce(sum(rejected), 0),
               (select count(*) from sync_rejects r
                 where r.source = %(source)s and r.run_id = %(run_id)s)
        from sync_log
        where source = %(source)s and run_id = %(run_id)s and status in ('SUCCESS', 'PARTIAL')
        """,
        {"source": source, "run_id": run_id},
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    return RunCounts(*(int(value) for value in row))


@dataclass
class RunRejects:
    """What one run of a feed rejected, for the operator: its most frequent reasons with their
    counts, and the first rejects themselves."""

    reasons: list[tuple[str, int]]
    samples: list[tuple[int, str | None, str | None, str]]  # id, partition, record key, reason


def run_rejects(
    conn: psycopg.Connection, source: str, run_id: str, *, reasons: int = 5, samples: int = 5
) -> RunRejects:
    """The run's rejects (sync_rejects rows it last saw) by reason, most frequent first, and
    a sample of them in the order they were first recorded."""
    where = {"source": source, "run_id": run_id}
    by_reason = conn.execute(
        """
        select reason, count(*) from sync_rejects
        where source = %(source)s and run_id = %(run_id)s
        group by reason order by count(*) desc, reason limit %(limit)s
        """,
        where | {"limit": reasons},
    ).fetchall()
    first = conn.execute(
        """
        select id, partition_key, record_key, reason from sync_rejects
        where source = %(source)s and run_id = %(run_id)s
        order by id limit %(limit)s
        """,
        where | {"limit": samples},
    ).fetchall()
    return RunRejects([(reason, int(count)) for reason, count in by_reason], list(first))


class UserSummary(TypedDict):
    users: int
    name_source: dict[str, int]  # users whose name came from each source


def user_summary(conn: psycopg.Connection) -> UserSummary:
    """How many users, and which source won each one's name (provenance)."""
    row = conn.execute("select count(*) from users").fetchone()
    assert row is not None  # an aggregate always returns a row
    total = row[0]
    by_source = conn.execute(
        "select coalesce(name_source, '(no name)'), count(*) from users group by 1 order by 2 desc"
    ).fetchall()
    return {"users": int(total), "name_source": {source: int(n) for source, n in by_source}}
