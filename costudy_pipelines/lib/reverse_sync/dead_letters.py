"""Dead letters of the reverse sync (status 'dead' in reverse_sync_tracking): list them, and
put them back in the retry queue for a replay.

A requeued dead letter becomes 'failed' with a fresh retry budget (attempts 0); the next run
of its event type reads it among the events to retry and writes it under the tracking table's
guarantees (direct: target and tracking row in one transaction; api: the create's
idempotency key), so a replay delivers each event once, however often it is repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from costudy_pipelines.lib.operator_filter import filter_clause
from costudy_pipelines.lib.reverse_sync.events import EVENT_TYPES, EventType

SAMPLE_SIZE = 20


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters: of these event types (all when empty), reason containing `reason`
    (any case), these source ids, last attempted at or after `since`."""

    event_types: tuple[str, ...] = ()
    reason: str | None = None
    ids: tuple[str, ...] = ()
    since: datetime | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.event_types) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown event type(s) {unknown}; expected some of {sorted(EVENT_TYPES)}"
            )

    def events(self) -> list[EventType]:
        return [EVENT_TYPES[name] for name in self.event_types or EVENT_TYPES]

    def clause(self) -> tuple[sql.Composed, dict[str, Any]]:
        """The filter as SQL over reverse_sync_tracking, with its parameters."""
        clause, params = filter_clause(
            ["status = 'dead'", "event_type = any(%(events)s::text[])"],
            reason=("last_error", self.reason),
            ids=("source_id", "text[]", self.ids),
            since=("last_attempted_at", self.since),
        )
        return clause, params | {"events": [event.name for event in self.events()]}


EVERY_DEAD_LETTER = DeadLetterFilter()


def list_dead_letters(
    conn: psycopg.Connection, where: DeadLetterFilter = EVERY_DEAD_LETTER, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The selected dead letters, most recently attempted first."""
    clause, params = where.clause()
    query = sql.SQL(
        "select event_type, source_id, target_table, target_id, attempts, last_error,"
        " first_attempted_at, last_attempted_at from reverse_sync_tracking where {}"
        " order by last_attempted_at desc, event_type, source_id limit %(limit)s"
    ).format(clause)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params | {"limit": limit}).fetchall()


def requeue(
    conn: psycopg.Connection, event: EventType, where: DeadLetterFilter = EVERY_DEAD_LETTER
) -> list[str]:
    """Make the selected dead letters of `event` retryable (failed, attempts 0); their ids."""
    clause, params = where.clause()
    query = sql.SQL(
        "update reverse_sync_tracking set status = 'failed', attempts = 0"
        " where event_type = %(event)s and {} returning source_id"
    ).format(clause)
    rows = conn.execute(query, params | {"event": event.name}).fetchall()
    return sorted(source_id for (source_id,) in rows)


@dataclass(frozen=True)
class Requeued:
    """Where the requeued events of one event type stand after the run that retried them."""

    synced: int
    failed: int  # will be retried by later runs
    dead_by_reason: dict[str, int]
    samples: list[dict[str, Any]]


def standing(conn: psycopg.Connection, event: EventType, source_ids: Sequence[str]) -> Requeued:
    params = {"event": event.name, "ids": list(source_ids)}
    mine = " from reverse_sync_tracking where event_type = %(event)s and source_id = any(%(ids)s)"
    by_status: dict[str, int] = dict(
        conn.execute("select status, count(*)" + mine + " group by status", params).fetchall()
    )
    dead = conn.execute(
        "select last_error, count(*)" + mine + " and status = 'dead' group by 1 order by 2 desc",
        params,
    ).fetchall()
    with conn.cursor(row_factory=dict_row) as cur:
        samples = cur.execute(
            "select source_id, status, last_error" + mine + " and status <> 'synced'"
            " order by source_id limit %(limit)s",
            params | {"limit": SAMPLE_SIZE},
        ).fetchall()
    return Requeued(
        int(by_status.get("synced", 0)),
        int(by_status.get("failed", 0)) + int(by_status.get("pending", 0)),
        {reason: int(n) for reason, n in dead},
        samples,
    )
