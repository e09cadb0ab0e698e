"""Shape drift, kept where each partition's session is: `sync_log.details -> 'shape'`.

Each session of a feed that declares its shape (`LoadSpec.shape`) gets, once it committed:
`{"records", "fields": {field: [types]}, "known": {field: [types]}, "drift": [Drift...]}`:
`fields` what its raw records showed, `known` everything seen up to it (the next session's
baseline), `drift` how it differed. The drift history is read back from there: per feed, each
difference with the first partition it showed in, an example record id, and how many
partitions and records showed it. Recording is best effort and never fails a sync.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.loading.report import WarehouseNotMigrated
from costudy_pipelines.lib.validation.shape import Drift, FeedShape, PartitionShape, drift, merged


@dataclass(frozen=True)
class DriftSeen:
    """One difference as the history shows it: where it first showed, how often since."""

    source: str
    field: str
    kind: str
    declared: bool
    expected: tuple[str, ...]
    found: tuple[str, ...]
    first_partition: str | None
    first_seen_at: datetime
    last_partition: str | None
    partitions: int
    records: int
    example_id: str

    def as_row(self) -> dict[str, Any]:
        return {
            "feed": self.source,
            "field": self.field,
            "kind": self.kind,
            "read_by_feed": self.declared,
            "expected": "|".join(self.expected),
            "found": "|".join(self.found),
            "first_partition": self.first_partition,
            "first_seen_at": self.first_seen_at.isoformat(),
            "last_partition": self.last_partition,
            "partitions": self.partitions,
            "records": self.records,
            "example_id": self.example_id,
        }

    def describe(self) -> str:
        text = Drift(self.field, self.kind, self.declared, self.expected, self.found,
                     self.records, self.example_id).describe()  # fmt: skip
        return (
            f"{self.source}: {text}, first in partition {self.first_partition} "
            f"(e.g. record {self.example_id}), {self.partitions} partition(s), "
            f"{self.records} record(s)"
        )


class ShapeRecorder:
    """One run's shape observation of one feed: `observe()` wraps each day's pages, `record()`
    stores each committed session's shape and drift.

    The days are read ahead of their loading (sync_windows' ReadAhead: day N+1's pages may be
    observed, in another thread, before day N is recorded), so each observed day has its own
    PartitionShape, queued in the days' order, and `record()` takes the oldest: the day whose
    session just committed (days commit, and are recorded, in the order they are read)."""

    def __init__(self, shape: FeedShape, known: Mapping[str, Iterable[str]] | None) -> None:
        self.shape = shape
        self.known: dict[str, set[str]] | None = (
            None if known is None else {name: set(types) for name, types in known.items()}
        )
        self._days: deque[PartitionShape] = deque()  # observed, not yet recorded, oldest first
        self.drift_by_session: dict[int, list[Drift]] = {}

    def observe(self, pages: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
        """The pages, unchanged; every record seen on the way (a new partition starts here)."""
        current = PartitionShape()
        self._days.append(current)
        for page in pages:
            for record in page:
                current.observe(record, self.shape)
            yield page

    def record(self, conn: psycopg.Connection, sync_log_id: int | None) -> list[Drift]:
        """Compare the partition just synced, remember its fields, store both in its sync_log
        row (when it has one); returns its drift."""
        observed = self._days.popleft() if self._days else PartitionShape()
        found = drift(self.shape, observed, self.known)
        if observed.records:
            self.known = merged(self.known, observed)
        if sync_log_id is None:
            return found
        shape = {
            "records": observed.records,
            "fields": observed.fields(),
            "known": {name: sorted(types) for name, types in sorted((self.known or {}).items())},
            "drift": [item.as_json() for item in found],
        }
        conn.execute(
            "update sync_log set details = details || jsonb_build_object('shape', %s::jsonb)"
            " where id = %s",
            (Jsonb(shape), sync_log_id),
        )
        self.drift_by_session[sync_log_id] = found
        return found


def known_shape(conn: psycopg.Connection, source: str) -> dict[str, list[str]] | None:
    """The fields and types a feed's sessions have seen so far (None: never observed)."""
    try:
        row = conn.execute(
            "select details -> 'shape' -> 'known' from sync_log"
            " where source = %s and details ? 'shape' order by id desc limit 1",
            (source,),
        ).fetchone()
    except psycopg.errors.UndefinedTable as exc:  # the first query of a sync on the warehouse
        raise WarehouseNotMigrated.on(conn, exc) from None
    return None if row is None or row[0] is None else dict(row[0])


def drift_history(
    conn: psycopg.Connection, *, sources: Iterable[str] | None = None, run_id: str | None = None
) -> list[DriftSeen]:
    """Every difference recorded (of `sources`, of one run), oldest first."""
    query = (
        "select source, partition_key, started_at, details -> 'shape' -> 'drift' from sync_log"
        " where details ? 'shape' and jsonb_array_length(details -> 'shape' -> 'drift') > 0"
    )
    params: list[Any] = []
    wanted = list(sources) if sources is not None else None
    if wanted is not None:
        query += " and source = any(%s)"
        params.append(wanted)
    if run_id is not None:
        query += " and run_id = %s"
        params.append(run_id)
    query += " order by source, started_at, partition_key"
    seen: dict[tuple[Any, ...], DriftSeen] = {}
    for source, partition, started, items in conn.execute(query, params):
        for item in items:
            key = (source, item["field"], item["kind"], tuple(item["found"]))
            first = seen.get(key)
            if first is None:
                seen[key] = DriftSeen(
                    source, item["field"], item["kind"], item["declared"],
                    tuple(item["expected"]), tuple(item["found"]), partition, started,
                    partition, 1, item["records"], item["example_id"],
                )  # fmt: skip
            else:
                seen[key] = DriftSeen(
                    source, first.field, first.kind, first.declared, first.expected,
                    first.found, first.first_partition, first.first_seen_at, partition,
                    first.partitions + 1, first.records + item["records"], first.example_id,
                )  # fmt: skip
    return sorted(seen.values(), key=lambda d: (d.source, d.first_seen_at, d.field, d.kind))
