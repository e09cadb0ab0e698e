"""Replay rejects: re-validate unresolved rejects with today's validators, load what passes."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg.types.json import Jsonb

from costudy_pipelines.lib.loading.canonical import UNSTORABLE_KEY
from costudy_pipelines.lib.loading.report import SyncReport
from costudy_pipelines.lib.loading.session import ConnectionSource, SyncSession, session_connection
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS, LoadOptions, LoadSpec

REPLAY_PARTITION = "replay"


def replay_rejects(
    connect: ConnectionSource,
    spec: LoadSpec,
    *,
    run_id: str | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Re-validate the unresolved rejects of `spec` (its name and scope) and load those that pass.

    Passing rejects are marked resolved (resolved_at, resolved_by_run) in the same transaction
    as their rows; the rest keep their row with the current reason and a fresh last_seen.
    A session like any other: sync_log row with partition 'replay', SyncFailed on error.
    """
    report = SyncReport(spec.name, spec.table, REPLAY_PARTITION, run_id, full=False)
    session = SyncSession(connect, spec, options, report, replay=True)
    return session.run(_unresolved(connect, spec, options.chunk_size))


def _unresolved(connect: ConnectionSource, spec: LoadSpec, batch: int) -> Iterator[tuple]:
    """Stream (fingerprint, raw) of the unresolved rejects through a server-side cursor."""
    with session_connection(connect) as conn, conn.cursor(name="replay_rejects") as cur:
        cur.itersize = batch
        cur.execute(
            "select fingerprint, raw from sync_rejects where source = %s and scope = %s::jsonb"
            " and resolved_at is null and not raw ? %s order by id",
            (spec.name, Jsonb(dict(spec.scope)), UNSTORABLE_KEY),
        )
        yield from cur
