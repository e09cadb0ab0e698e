"""Records indexed once for paging: sorted by (time, id), serialised once; a page is a slice.

A server holds up to millions of records and must answer a page in well under a millisecond per
record. So each record is turned into JSON exactly once, when it is loaded, and all of them are
stored back to back in one buffer (each followed by a comma). A page in the stored order is then
one slice of that buffer, and cursors resolve by bisecting the sorted (time, id) keys.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

Record = Mapping[str, Any]
# What a server accepts as data: records, or a callable that yields the current records (the
# world generator's store), read again on `refresh()`.
RecordSource = Iterable[Record] | Callable[[], Iterable[Record]]
Key = tuple[int, str]

# Records whose time cannot be read (the world has ~1 % malformed records) sort first, at the
# epoch: they are still served, so that the product's validation sees and rejects them.
UNDATED = 0
COMMA = ord(",")
_RELEASED: tuple[Key, bytes] = ((UNDATED, ""), b"")


class CursorError(ValueError):
    """A cursor that this server did not issue."""


def epoch_us(value: object) -> int:
    """Microseconds since the epoch of an ISO-8601 string, a datetime or a number of seconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000)
    if isinstance(value, bool):
        return UNDATED
    if isinstance(value, int | float):
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            return epoch_us(datetime.fromisoformat(value.strip()))
        except ValueError:
            return UNDATED
    return UNDATED


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


# One encoder for every record: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def dump_json(value: object) -> bytes:
    """Compact UTF-8 JSON, the way the servers answer."""
    return _ENCODER.encode(value).encode()


def encode_cursor(key: Key) -> str:
    """An opaque cursor for a position: the (time, id) key of the record it points at."""
    raw = f"{key[0]}:{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, parameter: str = "cursor") -> Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, record_id = raw.split(":", 1)
        return int(moment), record_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(f"{parameter}: invalid cursor {cursor!r}") from None


class RecordIndex:
    """Immutable: records sorted by (time, id), their JSON in one buffer. Changes build a new one,
    so a request in flight keeps a consistent view while the data is replaced."""

    def __init__(self, entries: list[tuple[Key, bytes]]) -> None:
        """Takes over `entries` (sorts it, then empties it as each record is copied, so that at a
        million records the serialised data is not held twice)."""
        entries.sort(key=lambda entry: entry[0])
        self.keys: list[Key] = [key for key, _ in entries]
        self._offsets = array("Q", [0])
        position = 0
        for _, blob in entries:
            position += len(blob) + 1
            self._offsets.append(position)
        self._buffer = bytearray(position)
        for number, (_, blob) in enumerate(entries):
            start = self._offsets[number]
            self._buffer[start : start + len(blob)] = blob
            self._buffer[start + len(blob)] = COMMA
            entries[number] = _RELEASED
        entries.clear()
        self._view = memoryview(self._buffer)

    def __len__(self) -> int:
        return len(self.keys)

    def joined(self, start: int, stop: int) -> bytes:
        """Records start..stop-1 as the inside of a JSON array (comma separated)."""
        if stop <= start:
            return b""
        return bytes(self._view[self._offsets[start] : self._offsets[stop] - 1])

    def record_json(self, position: int) -> bytes:
        return bytes(self._view[self._offsets[position] : self._offsets[position + 1] - 1])

    def record(self, position: int) -> dict[str, Any]:
        return json.loads(self.record_json(position))

    def after(self, key: Key) -> int:
        """Position of the first record strictly after `key`."""
        return bisect.bisect_right(self.keys, key)

    def at_or_after(self, key: Key) -> int:
        return bisect.bisect_left(self.keys, key)

    def time_at_or_after(self, moment: int) -> int:
        """Position of the first record whose time is >= moment."""
        return bisect.bisect_left(self.keys, (moment, ""))

    def entries(self) -> Iterator[tuple[Key, bytes]]:
        for position, key in enumerate(self.keys):
            yield key, self.record_json(position)


class RecordCollection:
    """One kind of record (payments, contacts, ...), optionally split by a partition field
    (GoHighLevel's locationId), each partition a RecordIndex. Ids are unique: a record loaded
    again with an id already present replaces the earlier one, as an API would show it."""

    def __init__(
        self,
        name: str,
        *,
        time_field: str,
        id_field: str = "id",
        partition_field: str | None = None,
        time_unit_us: int = 1,
    ) -> None:
        self.name = name
        self.time_field = time_field
        self.id_field = id_field
        self.partition_field = partition_field
        # GoHighLevel cursors carry milliseconds, so its keys are kept in milliseconds: ordering
        # by (ms, id) must be the order the cursor is resolved in.
        self.time_unit_us = time_unit_us
        self._partitions: dict[str | None, RecordIndex] = {}

    def index(self, partition: str | None = None) -> RecordIndex:
        return self._partitions.get(partition) or _EMPTY

    def partitions(self) -> list[str | None]:
        return list(self._partitions)

    def __len__(self) -> int:
        return sum(len(index) for index in self._partitions.values())

    def replace(self, records: Iterable[Record]) -> None:
        grouped: dict[str | None, dict[str, tuple[Key, bytes]]] = {}
        for number, record in enumerate(records):
            partition, record_id, entry = self._entry(number, record)
            grouped.setdefault(partition, {})[record_id] = entry
        partitions = {}
        while grouped:  # pop each group: only the index's entry list holds its records
            partition, by_id = grouped.popitem()
            entries = list(by_id.values())
            by_id.clear()
            partitions[partition] = RecordIndex(entries)
        self._partitions = partitions

    def upsert(self, records: Iterable[Record]) -> None:
        changed: dict[str | None, dict[str, tuple[Key, bytes]]] = {}
        moved: set[str] = set()
        for number, record in enumerate(records):
            partition, record_id, entry = self._entry(number, record)
            changed.setdefault(partition, {})[record_id] = entry
            moved.add(record_id)
        partitions = dict(self._partitions)
        for partition in set(partitions) | set(changed):
            by_id = {key[1]: (key, blob) for key, blob in self.index(partition).entries()}
            for record_id in moved:  # a record may have moved to another partition
                by_id.pop(record_id, None)
            by_id.update(changed.get(partition, {}))
            partitions[partition] = RecordIndex(list(by_id.values()))
        self._partitions = partitions

    def delete(self, ids: Iterable[str]) -> int:
        """Remove records by id; returns how many were present."""
        doomed = {str(record_id) for record_id in ids}
        removed = 0
        partitions: dict[str | None, RecordIndex] = {}
        for partition, index in self._partitions.items():
            kept = [(key, blob) for key, blob in index.entries() if key[1] not in doomed]
            removed += len(index) - len(kept)
            partitions[partition] = RecordIndex(kept) if len(kept) != len(index) else index
        self._partitions = partitions
        return removed

    def find(self, record_id: str) -> bytes | None:
        """The record with this id as served, or None (a scan: get-by-id is the rare call)."""
        for index in self._partitions.values():
            for key, blob in index.entries():
                if key[1] == record_id:
                    return blob
        return None

    def _entry(self, number: int, record: Record) -> tuple[str | None, str, tuple[Key, bytes]]:
        record_id = record.get(self.id_field)
        if record_id is None or record_id == "":
            raise ValueError(f"{self.name}: record #{number} has no {self.id_field!r}")
        partition = record.get(self.partition_field) if self.partition_field else None
        moment = epoch_us(record.get(self.time_field)) // self.time_unit_us
        key = (moment, str(record_id))
        return partition, str(record_id), (key, dump_json(record))


_EMPTY = RecordIndex([])


def materialise(source: RecordSource) -> Iterable[Record]:
    return source() if callable(source) else source
