"""Comparing two databases in SQL: stream one side's keys into a temporary table of the other.

`stage_query` runs `COPY (<query>) TO STDOUT` on the source and writes the bytes, block by
block as they arrive, into `COPY <temp table> FROM STDIN` on the target: no row is parsed in
Python and memory stays at one block, so a million keys cost a few seconds and no RAM. The
comparison itself is then set-based SQL on the target (hash full joins, anti-joins), and
only counts and SAMPLE_SIZE keys per finding come back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

SAMPLE_SIZE = 20
# Enough for a hash join of a million staged keys in one batch; local to the comparison.
COMPARISON_WORK_MEM = "64MB"


@contextmanager
def comparison(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A transaction on the comparing side: temporary tables live until it ends."""
    with conn.transaction():
        conn.execute(f"set local work_mem = '{COMPARISON_WORK_MEM}'")
        yield conn


def stage_query(
    source: psycopg.Connection,
    query: sql.Composable,
    params: Mapping[str, object] | None,
    target: psycopg.Connection,
    table: str,
    columns: Mapping[str, str],
) -> int:
    """Create temporary `table` (column name -> type) on `target`, in its open transaction
    (see `comparison`), filled with the rows of `query` on `source`; returns the rows staged.

    The source is read in one REPEATABLE READ, READ ONLY transaction (one snapshot).
    """
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in columns.items()
    )
    target.execute(
        sql.SQL("create temporary table {} ({}) on commit drop").format(
            sql.Identifier(table), definition
        )
    )
    copy_out = sql.SQL("copy ({}) to stdout").format(query)
    copy_in = sql.SQL("copy {} from stdin").format(sql.Identifier(table))
    writer = target.cursor()
    with source.transaction():
        source.execute("set transaction isolation level repeatable read, read only")
        with source.cursor().copy(copy_out, params) as reading, writer.copy(copy_in) as writing:
            for block in reading:
                writing.write(block)
    target.execute(sql.SQL("analyze {}").format(sql.Identifier(table)))
    return writer.rowcount


@dataclass(frozen=True)
class Found:
    """How many rows a query found and the first SAMPLE_SIZE of their keys."""

    count: int
    sample: list[str]


def count_and_sample(
    conn: psycopg.Connection,
    query: sql.Composable,
    params: Mapping[str, object] | None = None,
) -> Found:
    """Run `query` (one column `key`) once: the total comes from a window count and the sample
    is the SAMPLE_SIZE smallest keys (a top-N sort), so only SAMPLE_SIZE rows travel."""
    rows = conn.execute(
        sql.SQL("select key, count(*) over () from ({}) as found order by key limit {}").format(
            query, sql.Literal(SAMPLE_SIZE)
        ),
        params,
    ).fetchall()
    return Found(int(rows[0][1]) if rows else 0, [str(key) for key, _ in rows])
