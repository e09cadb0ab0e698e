"""What the near-real-time sensor looks at: new website rows per table, and the webhook inbox.

The cursor holds, per table, the last (updated_at, id) seen and the last inbox delivery seen.
It only ever moves forward. A run key is the source state it answers (the table's position and
the newest delivery for that event type), so evaluating the same state twice asks for the same
run, and Dagster launches it once.

Rows whose transaction commits with an updated_at behind the cursor are not seen here: the
periodic batch (which re-reads an overlap window and compares fingerprints) catches them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg

from costudy_pipelines.lib.reverse_sync import website
from costudy_pipelines.lib.reverse_sync.events import EventType
from costudy_pipelines.lib.reverse_sync.website import Position


@dataclass(frozen=True)
class SensorCursor:
    tables: dict[str, Position] = field(default_factory=dict)
    inbox_id: int = 0

    def to_json(self) -> str:
        tables = {
            name: [position.updated_at.isoformat(), position.id]
            for name, position in sorted(self.tables.items())
        }
        return json.dumps({"tables": tables, "inbox_id": self.inbox_id}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | None) -> SensorCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        tables = {
            name: Position(datetime.fromisoformat(updated_at), int(row_id))
            for name, (updated_at, row_id) in data.get("tables", {}).items()
        }
        return cls(tables, int(data.get("inbox_id", 0)))


@dataclass(frozen=True)
class Trigger:
    event_type: str
    run_key: str
    reason: str


def pushed_since(conn: psycopg.Connection, after_id: int) -> dict[str, int]:
    """Per event type, the newest accepted, unprocessed delivery after `after_id`."""
    rows = conn.execute(
        "select event_type, max(id) from reverse_sync_webhook_inbox "
        "where id > %s and refusal is null and processed_at is null group by event_type",
        (after_id,),
    ).fetchall()
    return dict(rows)


def _run_key(event: EventType, position: Position | None, delivery: int) -> str:
    table = "empty" if position is None else f"{position.updated_at.isoformat()}/{position.id}"
    return f"reverse_sync:{event.name}:{table}:inbox-{delivery}"


def find_triggers(
    website_conn: psycopg.Connection,
    platform_conn: psycopg.Connection,
    events: Iterable[EventType],
    cursor: SensorCursor,
) -> tuple[list[Trigger], SensorCursor]:
    """The event types with new rows or new pushes since `cursor`, and the advanced cursor."""
    pushes = pushed_since(platform_conn, cursor.inbox_id)
    triggers: list[Trigger] = []
    tables = dict(cursor.tables)
    for event in events:
        newest = website.newest_position(website_conn, event, tables.get(event.name))
        delivery = pushes.get(event.name)
        if newest is not None:
            tables[event.name] = newest
        reasons = []
        if newest is not None:
            reasons.append(f"rows changed up to {newest.updated_at.isoformat()} (id {newest.id})")
        if delivery is not None:
            reasons.append(f"webhook deliveries up to inbox id {delivery}")
        if reasons:
            key = _run_key(event, tables.get(event.name), delivery or 0)
            triggers.append(Trigger(event.name, key, "; ".join(reasons)))
    inbox_id = max([cursor.inbox_id, *pushes.values()])
    return triggers, replace(cursor, tables=tables, inbox_id=inbox_id)
