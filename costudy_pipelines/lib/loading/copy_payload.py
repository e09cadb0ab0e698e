"""Rows serialised for `COPY ... FROM STDIN (FORMAT BINARY)` ahead of time, off the connection.

A session prepares chunk N+1 in the calling thread while a loader thread applies chunk N. If
the loader serialised its own rows (`Copy.write_row`), that Python work would hold the GIL
against the preparing thread and leave the server idle meanwhile; serialised here, by the
preparing thread, the loader only sends bytes and waits on the server.

psycopg has no public API for this: the formatter is the one `Copy.write_row` uses
(`psycopg._copy_base.BinaryFormatter`, in C with psycopg[binary]). psycopg is pinned to 3.3.*,
and costudy_pipelines_tests/lib/loading/test_copy_payload.py loads a payload through a real
COPY, so an upgrade that changes either fails there first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import adapt, pq
from psycopg._copy_base import BinaryFormatter


class CopyPayloadWriter:
    """Serialises rows of fixed PostgreSQL types (names, as for `Copy.set_types`)."""

    def __init__(self, conn: psycopg.Connection, types: Sequence[str]) -> None:
        # the connection's adapters and encoding; read here once, never used concurrently
        self._transformer = adapt.Transformer.from_context(conn)
        registry = conn.adapters.types
        oids = [registry.get_oid(name) for name in types]
        self._transformer.set_dumper_types(oids, pq.Format.BINARY)

    def payload(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """A complete binary COPY stream (signature, rows, trailer) of `rows`."""
        formatter = BinaryFormatter(self._transformer)
        parts = [formatter.write_row(row) for row in rows]
        parts.append(formatter.end())
        return b"".join(parts)


def copy_payload(cur: psycopg.Cursor, statement: Any, payload: bytes) -> None:
    """Send a payload made by CopyPayloadWriter through `statement` (COPY ... FORMAT BINARY)."""
    with cur.copy(statement) as copy:
        copy.write(payload)
