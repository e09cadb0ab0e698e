"""Operator replays, shared by `costudy rejects|reverse-sync dead-letters` and the Dagster jobs
`replay_rejects` / `replay_dead_letters` (defs/replay.py).

Rejects are named by feed (the asset: `whop_payments`, `sheet_workshop_signups`) or by source
(`sheets`: all its feeds); each feed's rejects are re-validated by the feed's current validator
from the registry (lib/loading/replay.py). Dead letters are requeued and retried by a run of
their event type (lib/reverse_sync/dead_letters.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import psycopg

from costudy_pipelines.lib.loading import ConnectionSource, LoadOptions, LoadSpec, SyncReport
from costudy_pipelines.lib.loading.replay import (
    RejectFilter,
    StillRejected,
    list_rejects,
    new_run_id,
    replay_rejects,
    still_rejected,
)
from costudy_pipelines.lib.loading.session import session_connection
from costudy_pipelines.lib.reverse_sync import EventType, PlatformApiClient, SyncOptions
from costudy_pipelines.lib.reverse_sync import SyncReport as ReverseSyncReport
from costudy_pipelines.lib.reverse_sync.dead_letters import (
    DeadLetterFilter,
    Requeued,
    requeue,
    standing,
)
from costudy_pipelines.lib.reverse_sync.sync import sync_event_type


def list_feed_rejects(
    conn: psycopg.Connection, feeds: Sequence[LoadSpec], where: RejectFilter, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The selected unresolved rejects, each with the feed (asset) it belongs to."""
    return [
        {"asset": row["source"], **row} for row in list_rejects(conn, feeds, where, limit=limit)
    ]


@dataclass(frozen=True)
class FeedReplay:
    """One feed's replay: the session's report and what stayed rejected."""

    asset: str
    report: SyncReport
    still: StillRejected

    def summary(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "replayed": self.report.records_in,
            "resolved": self.report.resolved_rejects,
            "loaded": self.report.inserted + self.report.updated,
            "still_rejected": sum(self.still.by_reason.values()),
            "still_rejected_by_reason": dict(self.still.by_reason),
        }


def replay_feed_rejects(
    connect: ConnectionSource,
    feeds: Sequence[LoadSpec],
    where: RejectFilter,
    *,
    run_id: str | None = None,
    options: LoadOptions | None = None,
) -> list[FeedReplay]:
    """Replay the selected rejects of each feed that has any (one session per feed)."""
    run_id = run_id or new_run_id()
    replays = []
    for feed in feeds:
        with closing(session_connection(connect)) as conn:
            if not list_rejects(conn, [feed], where, limit=1):
                continue
        report = replay_rejects(
            connect, feed, where=where, run_id=run_id, options=options or LoadOptions()
        )
        with closing(session_connection(connect)) as conn:
            replays.append(FeedReplay(feed.name, report, still_rejected(conn, feed, run_id)))
    return replays


@dataclass(frozen=True)
class EventReplay:
    """One event type's dead-letter replay: what was requeued, the run, where they stand."""

    event_type: str
    requeued: list[str]
    report: ReverseSyncReport
    standing: Requeued

    def summary(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "replayed": len(self.requeued),
            "delivered": self.standing.synced,
            "failed_will_retry": self.standing.failed,
            "still_dead": sum(self.standing.dead_by_reason.values()),
            "still_dead_by_reason": dict(self.standing.dead_by_reason),
        }


def replay_dead_letters(
    website: psycopg.Connection,
    platform: psycopg.Connection,
    where: DeadLetterFilter,
    *,
    options: Callable[[EventType], SyncOptions],
    api: Callable[[EventType], PlatformApiClient | None],
    run_id: str | None = None,
) -> list[EventReplay]:
    """Requeue the selected dead letters and run a sync of each event type that has some.

    Both connections autocommit (as sync_event_type wants). The requeue commits first: if the
    run then fails (the target still down), the events stay queued for the regular runs.
    """
    replays = []
    for event in where.events():
        with platform.transaction():
            ids = requeue(platform, event, where)
        if not ids:
            continue
        report = sync_event_type(
            event, website, platform, options(event), api=api(event), run_id=run_id
        )
        replays.append(EventReplay(event.name, ids, report, standing(platform, event, ids)))
    return replays
