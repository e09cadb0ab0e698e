"""Extractors for the application databases: website, platform and course platform.

Each extractor is one parameterised query (identifiers through psycopg.sql.Identifier,
values as parameters) streamed through a server-side (named) cursor in bounded chunks, in
one REPEATABLE READ, READ ONLY transaction, so a long extract sees one consistent snapshot
and never holds more than a chunk in memory. Rows are whole table rows as dicts with the
driver's Python types (datetime, Decimal, UUID, ...); timestamps are read in UTC
(`SET LOCAL TIME ZONE 'UTC'`), which is also how `timestamp without time zone` columns are
compared with a window's bounds. A window selects `created_at` in [start, end); rows come
ordered by (created_at, id), so chunks are deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from costudy_pipelines.lib.clients.base import Page, TimeWindow

DEFAULT_CHUNK_SIZE = 5000


class Extract(Protocol):
    """What `extract_pages` runs: a name (for the cursor) and one query per window."""

    @property
    def name(self) -> str: ...

    def query(self, window: TimeWindow | None) -> sql.Composed: ...


@dataclass(frozen=True)
class TableExtract:
    """Whole rows of one table, optionally those created within a window."""

    name: str
    table: str
    created_column: str = "created_at"
    id_column: str = "id"
    schema: str | None = None

    def query(self, window: TimeWindow | None) -> sql.Composed:
        return sql.SQL("select t.* from {table} as t {where} order by t.{created}, t.{id}").format(
            table=qualified(self.schema, self.table),
            where=window_clause(self.created_column, window),
            created=sql.Identifier(self.created_column),
            id=sql.Identifier(self.id_column),
        )


def extract_pages(
    engine: sa.Engine,
    extract: Extract,
    window: TimeWindow | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[Page]:
    """Rows of `extract` (created within `window`, if given) in chunks of `chunk_size`.

    The transaction stays open while the caller consumes the pages; closing the generator
    (or finishing it) ends it.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    params = {} if window is None else {"start": window.start, "end": window.end}
    with (
        engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as connection,
        connection.begin(),
    ):
        driver = connection.connection.driver_connection
        if not isinstance(driver, psycopg.Connection):
            raise TypeError(f"extract {extract.name} needs a psycopg 3 engine, got {driver!r}")
        driver.execute("set local time zone 'UTC'")
        with driver.cursor(name=f"extract_{extract.name}", row_factory=dict_row) as cursor:
            # Exact amounts inside JSON (order items) stay Decimal, never float.
            set_json_loads(partial(json.loads, parse_float=Decimal), cursor)
            cursor.itersize = chunk_size
            cursor.execute(extract.query(window), params)
            while rows := cursor.fetchmany(chunk_size):
                yield rows


def qualified(schema: str | None, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def window_clause(column: str, window: TimeWindow | None) -> sql.Composable:
    if window is None:
        return sql.SQL("")
    return sql.SQL("where t.{c} >= %(start)s and t.{c} < %(end)s").format(c=sql.Identifier(column))


class TableReader:
    """An application database's rows of one extract, read day by day for one run (what a
    database source's asset runs); the database reports no counts: its check counts rows."""

    def __init__(self, engine: sa.Engine, extract: Extract) -> None:
        self.engine, self.extract = engine, extract

    def day(self, window: TimeWindow) -> Iterator[Page]:
        return extract_pages(self.engine, self.extract, window)

    def reported(self, window: TimeWindow) -> None:
        return None

    def run_figures(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """The engine is the resource's, kept across runs."""
