"""The platform side of the bookkeeping: tracking rows, the audit log and the webhook inbox.

Every statement takes a whole chunk (rows as one jsonb parameter, unpacked by
jsonb_to_recordset), so a chunk costs a fixed number of round trips, whatever its size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.reverse_sync.events import EventType, Strategy, json_value

Operation = Literal["create", "update"]


@dataclass(frozen=True)
class Tracked:
    """What the platform knows of one event."""

    fingerprint: str
    status: str
    target_id: str | None


@dataclass(frozen=True)
class Outcome:
    """What happened to one event in this run: landed (target_id), or failed (error).

    `final` failures are dead letters at once (retrying cannot help: invalid input, a 4xx);
    the others are retried on later runs until the retry cap. `counted` says the attempt was
    already counted when the event was claimed (API strategy)."""

    source_id: str
    fingerprint: str
    source_updated_at: datetime
    operation: Operation
    target_id: str | None = None
    error: str | None = None
    final: bool = False
    counted: bool = False
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recorded:
    source_id: str
    status: str
    audit_operation: str
    error: str | None


def as_jsonb(value: Iterable[Any]) -> Jsonb:
    """A jsonb parameter; generators become arrays (a chunk of rows for jsonb_to_recordset)."""
    if not isinstance(value, dict | list):
        value = list(value)
    return Jsonb(value, dumps=lambda obj: json.dumps(obj, default=json_value))


def watermark(conn: psycopg.Connection, event: EventType) -> datetime | None:
    """The newest source updated_at the platform has seen for this event type."""
    row = conn.execute(
        "select max(source_updated_at) from reverse_sync_tracking where event_type = %s",
        (event.name,),
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    return row[0]


def tracked(
    conn: psycopg.Connection, event: EventType, source_ids: Sequence[str]
) -> dict[str, Tracked]:
    rows = conn.execute(
        "select source_id, fingerprint, status, target_id from reverse_sync_tracking "
        "where event_type = %s and source_id = any(%s)",
        (event.name, list(source_ids)),
    ).fetchall()
    return {source_id: Tracked(fp, status, target) for source_id, fp, status, target in rows}


def ids_to_retry(conn: psycopg.Connection, event: EventType) -> list[int]:
    """Events claimed but not confirmed (pending) or failed below the retry cap."""
    rows = conn.execute(
        "select source_id from reverse_sync_tracking "
        "where event_type = %s and status in ('pending', 'failed')",
        (event.name,),
    ).fetchall()
    return [int(source_id) for (source_id,) in rows]


def pushed(conn: psycopg.Connection, event: EventType) -> tuple[list[int], list[int]]:
    """Unprocessed accepted webhook deliveries for this event type: (inbox ids, source ids)."""
    rows = conn.execute(
        "select id, source_id from reverse_sync_webhook_inbox "
        "where event_type = %s and refusal is null and processed_at is null",
        (event.name,),
    ).fetchall()
    return [inbox_id for inbox_id, _ in rows], [int(source_id) for _, source_id in rows]


def mark_processed(conn: psycopg.Connection, inbox_ids: Sequence[int]) -> None:
    conn.execute(
        "update reverse_sync_webhook_inbox set processed_at = now() where id = any(%s)",
        (list(inbox_ids),),
    )


def claim(
    conn: psycopg.Connection,
    event: EventType,
    strategy: Strategy,
    rows: Iterable[tuple[str, str, datetime]],
) -> None:
    """Mark (source id, fingerprint, source updated_at) as pending and count the attempt, before
    the API is called: an event whose answer is lost in a crash is retried, and a poison event
    that crashes every run still reaches the retry cap."""
    conn.execute(
        """
        insert into reverse_sync_tracking as k (
            event_type, source_id, fingerprint, source_updated_at, strategy, target_table,
            status, attempts)
        select %(event)s, i.source_id, i.fingerprint, i.source_updated_at, %(strategy)s,
               %(target)s, 'pending', 1
        from jsonb_to_recordset(%(rows)s) as i(
            source_id text, fingerprint text, source_updated_at timestamptz)
        on conflict (event_type, source_id) do update set
            attempts = case when k.fingerprint = excluded.fingerprint
                            then k.attempts + 1 else 1 end,
            fingerprint = excluded.fingerprint,
            source_updated_at = excluded.source_updated_at,
            strategy = excluded.strategy,
            target_table = excluded.target_table,
            status = 'pending',
            last_attempted_at = now()
        """,
        {
            "event": event.name,
            "strategy": strategy,
            "target": event.target,
            "rows": as_jsonb(
                {"source_id": s, "fingerprint": f, "source_updated_at": u} for s, f, u in rows
            ),
        },
    )


# The proposed row's `attempts` carries this run's increment (0 when the claim counted it);
# a changed fingerprint starts the count again, since new content earns a fresh retry budget.
RECORD_OUTCOMES = """
with input as (
    select * from jsonb_to_recordset(%(rows)s) as i(
        source_id text, fingerprint text, source_updated_at timestamptz, operation text,
        target_id text, error text, final boolean, counted boolean, detail jsonb)
),
tracked as (
    insert into reverse_sync_tracking as k (
        event_type, source_id, fingerprint, source_updated_at, strategy, target_table,
        target_id, status, attempts, last_error, synced_at)
    select %(event)s, i.source_id, i.fingerprint, i.source_updated_at, %(strategy)s, %(target)s,
           i.target_id,
           case when i.error is null then 'synced'
                when i.final or %(cap)s <= 1 then 'dead'
                else 'failed' end,
           case when i.counted then 0 else 1 end,
           i.error,
           case when i.error is null then now() end
    from input i
    on conflict (event_type, source_id) do update set
        attempts = case when k.fingerprint = excluded.fingerprint then k.attempts else 0 end
                   + excluded.attempts,
        status = case
            when excluded.status = 'synced' then 'synced'
            when excluded.status = 'dead'
              or case when k.fingerprint = excluded.fingerprint then k.attempts else 0 end
                 + excluded.attempts >= %(cap)s then 'dead'
            else 'failed' end,
        fingerprint = excluded.fingerprint,
        source_updated_at = excluded.source_updated_at,
        strategy = excluded.strategy,
        target_table = excluded.target_table,
        target_id = coalesce(excluded.target_id, k.target_id),
        last_error = excluded.last_error,
        synced_at = coalesce(excluded.synced_at, k.synced_at),
        last_attempted_at = now()
    returning k.source_id, k.status, k.attempts, k.target_id, k.last_error
),
results as (
    select t.*, i.fingerprint, i.detail, i.error,
           case t.status when 'synced' then i.operation when 'dead' then 'dead_letter'
                else 'failed' end as audit_operation
    from tracked t join input i using (source_id)
),
audited as (
    insert into reverse_sync_audit (
        run_id, event_type, source_id, operation, strategy, target_table, target_id,
        fingerprint, attempt, detail)
    select %(run)s, %(event)s, r.source_id, r.audit_operation, %(strategy)s, %(target)s,
           r.target_id, r.fingerprint, r.attempts,
           coalesce(r.detail, '{}') || jsonb_strip_nulls(jsonb_build_object('error', r.error))
    from results r
)
select source_id, status, audit_operation, last_error from results
"""


def record_outcomes(
    conn: psycopg.Connection,
    event: EventType,
    strategy: Strategy,
    outcomes: Sequence[Outcome],
    *,
    run_id: str,
    max_attempts: int,
) -> list[Recorded]:
    """Upsert the tracking rows and append the audit rows of a chunk, in one statement."""
    if not outcomes:
        return []
    rows = conn.execute(
        RECORD_OUTCOMES,
        {
            "event": event.name,
            "strategy": strategy,
            "target": event.target,
            "run": run_id,
            "cap": max_attempts,
            "rows": as_jsonb(
                {
                    "source_id": o.source_id,
                    "fingerprint": o.fingerprint,
                    "source_updated_at": o.source_updated_at,
                    "operation": o.operation,
                    "target_id": o.target_id,
                    "error": o.error,
                    "final": o.final,
                    "counted": o.counted,
                    "detail": o.detail,
                }
                for o in outcomes
            ),
        },
    ).fetchall()
    return [Recorded(*row) for row in rows]


def record_run(
    conn: psycopg.Connection,
    event: EventType,
    strategy: Strategy,
    *,
    run_id: str,
    summary: dict[str, Any],
) -> None:
    """The run's own audit row: its counts and duration."""
    conn.execute(
        "insert into reverse_sync_audit (run_id, event_type, operation, strategy, detail) "
        "values (%s, %s, 'run', %s, %s)",
        (run_id, event.name, strategy, as_jsonb(summary)),
    )


def last_synced_at(conn: psycopg.Connection, event: EventType) -> datetime | None:
    """When an event of this type last landed: the 'last successful sync' an operator watches."""
    row = conn.execute(
        "select max(synced_at) from reverse_sync_tracking where event_type = %s", (event.name,)
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    return row[0]
