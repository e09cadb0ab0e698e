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

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import adapt, postgres, pq
from psycopg._copy_base import BinaryFormatter
from psycopg.abc import AdaptContext, Buffer

_TEXT_OID = postgres.types["text"].oid
_HEADER = struct.Struct("!iiiii")  # ndim, has nulls, element type, length, lower bound
_LENGTH = struct.Struct("!i")
_EMPTY_TEXT_ARRAY = struct.pack("!iii", 0, 0, _TEXT_OID)
_NULL_ELEMENT = _LENGTH.pack(-1)


class TextArrayBinaryDumper(adapt.Dumper):
    """A flat list of str (or None) as a binary text[]: the common case of a tags column,
    ~4x cheaper than psycopg's generic list dumper (Python, element by element through
    dumpers). Anything else (nested lists, other element types) goes to the generic one."""

    format = pq.Format.BINARY
    oid = postgres.types["text"].array_oid

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self._generic = psycopg.adapters.get_dumper_by_oid(self.oid, pq.Format.BINARY)(cls, context)

    def dump(self, obj: Any) -> bytes | bytearray | memoryview | None:
        if not obj:
            return _EMPTY_TEXT_ARRAY
        parts: list[bytes] = [b""]
        has_null = 0
        for item in obj:
            if type(item) is str:
                data = item.encode()
                parts.append(_LENGTH.pack(len(data)) + data)
            elif item is None:
                parts.append(_NULL_ELEMENT)
                has_null = 1
            else:
                return self._generic.dump(obj)
        parts[0] = _HEADER.pack(1, has_null, _TEXT_OID, len(obj), 1)
        return b"".join(parts)


# A COPY stream in blocks, as CopyPayloadWriter.payload makes it.
Payload = list[Buffer]


class _Context:
    """An adaptation context: the connection's, with `adapters` in place of its own."""

    def __init__(self, adapters: adapt.AdaptersMap, conn: psycopg.Connection) -> None:
        self.adapters = adapters
        self.connection = conn


class CopyPayloadWriter:
    """Serialises rows of fixed PostgreSQL types (names, as for `Copy.set_types`)."""

    def __init__(self, conn: psycopg.Connection, types: Sequence[str]) -> None:
        # the connection's adapters and encoding; read here once, never used concurrently
        adapters = adapt.AdaptersMap(conn.adapters)
        adapters.register_dumper(None, TextArrayBinaryDumper)
        self._transformer = adapt.Transformer(_Context(adapters, conn))
        registry = conn.adapters.types
        oids = [registry.get_oid(name) for name in types]
        self._transformer.set_dumper_types(oids, pq.Format.BINARY)

    def payload(self, rows: Iterable[Sequence[Any]]) -> Payload:
        """A complete binary COPY stream (signature, rows, trailer) of `rows`, in the
        formatter's blocks of ~32 KB: never joined into one large buffer, whose size would
        raise the allocator's mmap threshold and leave the heap fragmented chunk after chunk
        (peak RSS creeping up with the number of chunks)."""
        formatter = BinaryFormatter(self._transformer)
        blocks = [block for block in map(formatter.write_row, rows) if block]
        blocks.append(formatter.end())
        return blocks


def copy_payload(cur: psycopg.Cursor, statement: Any, payload: Payload) -> None:
    """Send a payload made by CopyPayloadWriter through `statement` (COPY ... FORMAT BINARY)."""
    with cur.copy(statement) as copy:
        for block in payload:
            copy.write(block)
