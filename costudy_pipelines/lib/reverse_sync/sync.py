"""One reverse-sync run of one event type: website rows in, platform rows and tracking out.

What is read: the rows updated since the platform's high-water mark (less an overlap, so a row
whose transaction committed late is still seen; the fingerprint makes re-reading it free), plus
the events to retry (pending or failed) and those the website pushed to the webhook inbox.

What is written, per chunk: nothing for an event whose fingerprint the platform already has
(synced or dead-lettered); otherwise the target row and its tracking row.
- direct: targets and tracking in ONE platform transaction. Tracking lives in the platform DB
  for exactly this reason: a crash leaves both or neither, and the upsert key of the target
  makes even a lost tracking row harmless.
- api: the events are claimed (pending, attempt counted) and committed first, then written
  through the API, then the answers recorded: a new event is created with an idempotency key,
  an edited one whose record exists (its id is in the tracking row) updates that record, as the
  direct upsert updates its row. A crash between the API and the record leaves them pending;
  the next run sends the same creates with the same keys and gets the same answers, and the
  same updates again, which changes nothing twice.
The website and platform databases are never in one transaction: the website is only read.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from costudy_pipelines.lib.reverse_sync import dead_letters, tracking, website
from costudy_pipelines.lib.reverse_sync.api import PlatformApiClient, idempotency_key
from costudy_pipelines.lib.reverse_sync.direct import Planned, write_direct
from costudy_pipelines.lib.reverse_sync.events import (
    STRATEGIES,
    EventType,
    Rejected,
    Strategy,
    json_value,
    target_values,
)
from costudy_pipelines.lib.reverse_sync.tracking import Outcome, Recorded

SAMPLE_SIZE = 20
COUNTED_AS = {"create": "synced", "update": "updated", "failed": "failed", "dead_letter": "dead"}


@dataclass(frozen=True)
class SyncOptions:
    strategy: Strategy = "direct"
    dry_run: bool = False
    full_refresh: bool = False  # every website row, not only those past the watermark, and
    # every dead letter again
    chunk_size: int = 2000
    max_attempts: int = 5  # runs that may fail an event before it becomes a dead letter
    overlap: timedelta = timedelta(minutes=10)
    dry_run_limit: int = 1000  # planned writes a dry run returns (its counts are complete)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGIES}")
        if self.chunk_size < 1 or self.max_attempts < 1:
            raise ValueError("chunk_size and max_attempts must be at least 1")


@dataclass(frozen=True)
class DeadLetter:
    source_id: str
    reason: str


@dataclass
class SyncReport:
    """Counts per run: synced = events landed for the first time, updated = edited events
    written again, unchanged = read but already in the platform; failed will be retried,
    dead will not (see dead_letters)."""

    event_type: str
    strategy: Strategy
    dry_run: bool
    run_id: str
    read: int = 0
    synced: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    dead: int = 0
    duration_s: float = 0.0
    dead_letters: list[DeadLetter] = field(default_factory=list)  # up to SAMPLE_SIZE
    planned: list[Planned] = field(default_factory=list)  # dry run only
    last_synced_at: datetime | None = None

    @property
    def written(self) -> int:
        return self.synced + self.updated

    def summary(self) -> dict[str, Any]:
        counts = ("read", "synced", "updated", "unchanged", "failed", "dead")
        return {name: getattr(self, name) for name in counts} | {
            "duration_s": round(self.duration_s, 3)
        }

    def _dead_letter(self, source_id: str, reason: str | None) -> None:
        self.dead += 1
        if len(self.dead_letters) < SAMPLE_SIZE:
            self.dead_letters.append(DeadLetter(source_id, reason or ""))

    def count(self, recorded: Sequence[Recorded]) -> None:
        for item in recorded:
            counted = COUNTED_AS[item.audit_operation]
            if counted == "dead":
                self._dead_letter(item.source_id, item.error)
            else:
                setattr(self, counted, getattr(self, counted) + 1)

    def plan(self, planned: Sequence[Planned], rejected: Sequence[Outcome], limit: int) -> None:
        for item in planned:
            if item.operation == "create":
                self.synced += 1
            else:
                self.updated += 1
        self.planned.extend(planned[: max(0, limit - len(self.planned))])
        for outcome in rejected:
            self._dead_letter(outcome.source_id, outcome.error)


def sync_event_type(
    event: EventType,
    website_conn: psycopg.Connection,
    platform_conn: psycopg.Connection,
    options: SyncOptions | None = None,
    *,
    api: PlatformApiClient | None = None,
    run_id: str | None = None,
) -> SyncReport:
    """Sync one event type. Both connections must be autocommit (see connections.py)."""
    options = options or SyncOptions()
    if options.strategy == "api" and api is None:
        raise ValueError(f"{event.name}: the api strategy needs a PlatformApiClient")
    started = time.monotonic()
    report = SyncReport(event.name, options.strategy, options.dry_run, run_id or uuid.uuid4().hex)
    if options.full_refresh and not options.dry_run:
        # a full refresh retries everything, the dead letters too (the target may be back)
        with platform_conn.transaction():
            dead_letters.requeue(platform_conn, event)
    inbox_ids, chunks = _chunks_to_read(event, website_conn, platform_conn, options)
    writer = _Chunks(event, platform_conn, options, report, api)
    with closing(chunks):
        for rows in chunks:
            writer.sync(rows)
    report.duration_s = time.monotonic() - started
    if not options.dry_run:
        with platform_conn.transaction():
            tracking.mark_processed(platform_conn, inbox_ids)
            tracking.record_run(
                platform_conn,
                event,
                options.strategy,
                run_id=report.run_id,
                summary=report.summary(),
            )
    report.last_synced_at = tracking.last_synced_at(platform_conn, event)
    return report


def _chunks_to_read(
    event: EventType,
    website_conn: psycopg.Connection,
    platform_conn: psycopg.Connection,
    options: SyncOptions,
) -> tuple[list[int], Generator[list[website.Row]]]:
    """The inbox deliveries this run answers, and the website rows to look at, in chunks:
    first the named ones (to retry, or pushed), then everything changed since the watermark."""
    inbox_ids, pushed_ids = tracking.pushed(platform_conn, event)
    named = set(tracking.ids_to_retry(platform_conn, event)) | set(pushed_ids)
    since = None
    if not options.full_refresh:
        mark = tracking.watermark(platform_conn, event)
        if mark is not None:
            # A row stamped in the future must not push the window past rows written now.
            since = min(mark, website.clock(website_conn)) - options.overlap

    def chunks() -> Generator[list[website.Row]]:
        # `yield from` hands a close() on to the read in progress: its cursor and snapshot end
        # with the run, even when the run fails half-way.
        yield from website.read_ids(website_conn, event, named, options.chunk_size)
        for rows in website.read_changed(website_conn, event, since, options.chunk_size):
            if fresh := [row for row in rows if row["id"] not in named]:
                yield fresh

    return inbox_ids, chunks()


def _plan(
    event: EventType, rows: Sequence[website.Row], known: dict[str, tracking.Tracked]
) -> tuple[list[Planned], list[Outcome], int]:
    """(events to write, events rejected by validation, how many are unchanged)."""
    planned: list[Planned] = []
    rejected: list[Outcome] = []
    for row in rows:
        source_id, fingerprint = str(row["id"]), row["fingerprint"]
        state = known.get(source_id)
        if state and state.fingerprint == fingerprint and state.status in ("synced", "dead"):
            continue
        target_id = state.target_id if state else None
        operation: tracking.Operation = "update" if target_id else "create"
        try:
            values = target_values(event, row)
        except Rejected as exc:
            rejected.append(
                Outcome(
                    source_id, fingerprint, row["updated_at"], operation, error=str(exc), final=True
                )
            )
            continue
        planned.append(
            Planned(source_id, fingerprint, row["updated_at"], operation, values, target_id)
        )
    return planned, rejected, len(rows) - len(planned) - len(rejected)


@dataclass
class _Chunks:
    """Writes a run's chunks: what every chunk of one run shares."""

    event: EventType
    platform_conn: psycopg.Connection
    options: SyncOptions
    report: SyncReport
    api: PlatformApiClient | None

    def sync(self, rows: Sequence[website.Row]) -> None:
        ids = [str(row["id"]) for row in rows]
        known = tracking.tracked(self.platform_conn, self.event, ids)
        planned, rejected, unchanged = _plan(self.event, rows, known)
        self.report.read += len(rows)
        self.report.unchanged += unchanged
        if self.options.dry_run:
            self.report.plan(planned, rejected, self.options.dry_run_limit)
            return
        write = self._direct if self.options.strategy == "direct" else self._through_api
        self.report.count(write(planned, rejected))

    def _direct(self, planned: list[Planned], rejected: list[Outcome]) -> list[Recorded]:
        """Targets and their tracking and audit rows in one platform transaction."""
        with self.platform_conn.transaction():
            outcomes = write_direct(self.platform_conn, self.event, planned)
            return self._record(outcomes + rejected)

    def _through_api(self, planned: list[Planned], rejected: list[Outcome]) -> list[Recorded]:
        """Claim (committed), create or update through the API, then record the answers."""
        assert self.api is not None, "sync_event_type refuses the api strategy without a client"
        with self.platform_conn.transaction():
            claimed = [(p.source_id, p.fingerprint, p.source_updated_at) for p in planned]
            tracking.claim(self.platform_conn, self.event, "api", claimed)
        outcomes = [_write_through_api(self.api, self.event, item) for item in planned]
        with self.platform_conn.transaction():
            return self._record(outcomes + rejected)

    def _record(self, outcomes: list[Outcome]) -> list[Recorded]:
        return tracking.record_outcomes(
            self.platform_conn,
            self.event,
            self.options.strategy,
            outcomes,
            run_id=self.report.run_id,
            max_attempts=self.options.max_attempts,
        )


def _write_through_api(api: PlatformApiClient, event: EventType, item: Planned) -> Outcome:
    body = json.loads(json.dumps(item.values, default=json_value))
    if item.target_id is None:
        key = idempotency_key(event, item.source_id, item.fingerprint)
        result = api.create(event.target, body, key)
    else:
        result = api.update(event.target, item.target_id, body)
    detail = {"http_status": result.status, "http_attempts": result.attempts}
    if result.replayed:
        detail["replayed"] = True
    return item.outcome(
        target_id=result.target_id,
        error=result.error,
        final=result.error is not None and not result.retryable,
        counted=True,
        detail=detail,
    )
