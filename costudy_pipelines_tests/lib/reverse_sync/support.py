"""Writing website rows the way the website app does, and reading what the platform holds."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from costudy_pipelines.lib.reverse_sync import ApiSettings, PlatformApiClient
from costudy_pipelines.sandbox.servers import PlatformApiServer


def add_rows(website: psycopg.Connection, table: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows (each a dict of columns) in one statement; their ids in order."""
    names = list(rows[0])
    columns = [[row[name] for row in rows] for name in names]
    types = {  # unnest needs typed arrays
        "value": "smallint[]",
        "team_size": "integer[]",
        "created_at": "timestamptz[]",
        "updated_at": "timestamptz[]",
    }
    casts = [
        sql.SQL("{}::" + types.get(name, "text[]")).format(sql.Placeholder()) for name in names
    ]
    query = sql.SQL("insert into {} ({}) select * from unnest({}) returning id").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(casts),
    )
    return [row_id for (row_id,) in website.execute(query, columns).fetchall()]


def demo_request(email: str, **columns: Any) -> dict[str, Any]:
    return {
        "email": email,
        "name": "Ann Example",
        "company": "Acme",
        "phone": None,
        "content": "Show me the product",
    } | columns


def edit_row(website: psycopg.Connection, table: str, row_id: int, **columns: Any) -> None:
    """Change a row as the website app does: the columns, and updated_at to now."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder()) for name in columns
    )
    website.execute(
        sql.SQL("update {} set {}, updated_at = clock_timestamp() where id = %s").format(
            sql.Identifier(table), assignments
        ),
        [*columns.values(), row_id],
    )


def rows(
    conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def tracking(platform: psycopg.Connection, event_type: str) -> dict[str, dict[str, Any]]:
    found = rows(
        platform,
        "select * from reverse_sync_tracking where event_type = %s order by source_id",
        (event_type,),
    )
    return {row["source_id"]: row for row in found}


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(table))
    ).fetchone()[0]


def api_root(server: PlatformApiServer) -> str:
    """PLATFORM_API_URL for the sandbox: the API's root, as `costudy sandbox up` writes it."""
    return f"{server.base_url}/api/v1"


def api_client(server: PlatformApiServer, token: str, **settings: float) -> PlatformApiClient:
    """A client for the sandbox API; tests shorten the waits so retries stay fast."""
    defaults = {"initial_backoff_s": 0.01, "max_backoff_s": 0.05, "requests_per_second": 500.0}
    return PlatformApiClient(
        ApiSettings(base_url=api_root(server), token=token, **(defaults | settings))
    )
