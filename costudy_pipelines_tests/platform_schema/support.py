"""Small helpers for the platform schema tests: connect, add users, record API calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import TEST_URL_VAR

PLATFORM_SQL = PROJECT_ROOT / "sql" / "platform"


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(pg.libpq_dsn(url, source=TEST_URL_VAR), autocommit=True)


def add_user(conn: psycopg.Connection, email: str, **columns: object) -> UUID:
    names = ["email", *columns]
    query = sql.SQL("insert into users ({}) values ({}) returning id").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    return conn.execute(query, [email, *columns.values()]).fetchone()[0]


def record_calls(
    conn: psycopg.Connection,
    user_id: UUID,
    count: int,
    *,
    called_at: datetime | str | None = None,
    response_time_ms: int = 20,
    payload_size_bytes: int = 100,
) -> None:
    """`count` calls in one INSERT statement (at `called_at`, default now)."""
    conn.execute(
        """
        insert into api_usage (user_id, endpoint, response_time_ms, payload_size_bytes, called_at)
        select %s, '/v1/complete', %s, %s, coalesce(%s::timestamptz, now())
        from generate_series(1, %s)
        """,
        (user_id, response_time_ms, payload_size_bytes, called_at, count),
    )


def admit(
    conn: psycopg.Connection, user_id: UUID, count: int, *, at: datetime | str | None = None
) -> list[int | None]:
    """`count` admissions in one statement; the requests left after each."""
    rows = conn.execute(
        "select admit_api_call(%s, coalesce(%s::timestamptz, now())) "
        "from generate_series(1, %s) order by 1 desc",
        (user_id, at, count),
    ).fetchall()
    return [left for (left,) in rows]


def one(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> dict[str, Any]:
    """The single row of `query` as a dict."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    assert len(rows) == 1, f"expected one row, got {len(rows)}"
    return rows[0]


def usage_stats(conn: psycopg.Connection, user_id: UUID) -> dict[str, Any]:
    return one(conn, "select * from get_user_usage_stats(%s)", (user_id,))
