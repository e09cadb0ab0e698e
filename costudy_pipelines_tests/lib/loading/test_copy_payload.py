"""COPY payloads serialised ahead of time load through a real COPY exactly as the values were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from psycopg import sql

from costudy_pipelines.lib.loading.copy_payload import CopyPayloadWriter, copy_payload

TYPES = ("text", "bytea", "numeric", "timestamptz", "bytea")
TABLE = sql.SQL("create temp table t (t text, b bytea, n numeric, ts timestamptz, j jsonb)")
COPY = sql.SQL("copy t from stdin (format binary)")
JSON = b'{"name": "O\'Brien; drop table t; --", "city": "Z\xc3\xbcrich", "quote": "a\\"b"}'


def test_values_round_trip_through_a_real_copy(fresh_db_url: str) -> None:
    rows = [
        (
            "Chloé 🎓\ttab\nline",
            b"\x00\x01\xff",
            Decimal("19.99"),
            datetime(2024, 1, 2, tzinfo=UTC),
        ),
        (None, None, None, None),
        (
            "",
            b"",
            Decimal("-0.000001"),
            datetime(2024, 1, 2, 5, tzinfo=timezone(timedelta(hours=5))),
        ),
    ]
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute(TABLE)
        writer = CopyPayloadWriter(conn, TYPES)
        # jsonb's binary form is a version byte and the text: sent as bytea-typed bytes
        payload = writer.payload(
            [(*row, b"\x01" + JSON if row[0] is not None else None) for row in rows]
        )
        with conn.cursor() as cur:
            copy_payload(cur, COPY, payload)
        stored = conn.execute("select t, b, n, ts, j from t order by n nulls last").fetchall()
    # the same instant, whatever offset it was written with
    assert [row[:4] for row in stored] == [
        ("", b"", Decimal("-0.000001"), datetime(2024, 1, 2, tzinfo=UTC)),
        rows[0],
        (None, None, None, None),
    ]
    assert stored[1][4] == {"name": "O'Brien; drop table t; --", "city": "Zürich", "quote": 'a"b'}


def test_an_empty_payload_is_a_valid_empty_copy(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute(TABLE)
        payload = CopyPayloadWriter(conn, TYPES).payload([])
        with conn.cursor() as cur:
            copy_payload(cur, COPY, payload)
        assert conn.execute("select count(*) from t").fetchone() == (0,)


def test_a_payload_spanning_many_buffers_loads_every_row(fresh_db_url: str) -> None:
    """The formatter hands back its buffer every ~32 KB: none of those pieces may be lost."""
    rows = [(f"row {i} " + "x" * 500, None, Decimal(i), None, None) for i in range(2_000)]
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute(TABLE)
        with conn.cursor() as cur:
            copy_payload(cur, COPY, CopyPayloadWriter(conn, TYPES).payload(rows))
        count, total = conn.execute("select count(*), sum(n) from t").fetchone()
    assert (count, total) == (2_000, sum(range(2_000)))


def test_text_arrays_round_trip_through_a_real_copy(fresh_db_url: str) -> None:
    """Flat lists take the fast text[] dumper; nested ones the generic one: both load."""
    arrays = [
        [],
        ["lead", "Zürich 🎓", "", 'a,b\t{c}"d\\'],
        ["x", None, "y"],
        None,
        [["a", "b"], ["c", None]],
    ]
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute("create temp table a (n int, tags text[])")
        payload = CopyPayloadWriter(conn, ("int4", "text[]")).payload(enumerate(arrays))
        with conn.cursor() as cur:
            copy_payload(cur, sql.SQL("copy a from stdin (format binary)"), payload)
        stored = conn.execute("select tags, array_ndims(tags) from a order by n").fetchall()
    assert [tags for tags, _ in stored] == arrays
    assert [ndims for _, ndims in stored] == [None, 1, 1, None, 2]
