"""Replay rejects: re-validate unresolved rejects with today's validators, load what passes.

Also what an operator reads before and after a replay: the unresolved rejects (filtered by
reason, id and time) and, after it, what is still rejected and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.loading.canonical import UNSTORABLE_KEY
from costudy_pipelines.lib.loading.report import SyncReport
from costudy_pipelines.lib.loading.session import ConnectionSource, SyncSession, session_connection
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS, LoadOptions, LoadSpec
from costudy_pipelines.lib.operator_filter import filter_clause

REPLAY_PARTITION = "replay"
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class RejectFilter:
    """Which unresolved rejects: reason containing `reason` (any case), these ids, last seen
    at or after `since`. Unset parts do not filter."""

    reason: str | None = None
    ids: tuple[int, ...] = ()
    since: datetime | None = None

    def clause(self) -> tuple[sql.Composed, dict[str, Any]]:
        """The filter as SQL over sync_rejects (alias r), with its parameters."""
        return filter_clause(
            ["r.resolved_at is null"],
            reason=("r.reason", self.reason),
            ids=("r.id", "bigint[]", self.ids),
            since=("r.last_seen", self.since),
        )


ALL_UNRESOLVED = RejectFilter()


def replay_rejects(
    connect: ConnectionSource,
    spec: LoadSpec,
    *,
    where: RejectFilter = ALL_UNRESOLVED,
    run_id: str | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Re-validate the unresolved rejects of `spec` (its name and scope) that `where` selects,
    and load those that pass.

    Passing rejects are marked resolved (resolved_at, resolved_by_run) in the same transaction
    as their rows; the rest keep their row with the current reason, a fresh last_seen and this
    run's run_id. A session like any other: sync_log row with partition 'replay', SyncFailed on
    error. Sessions of one slice's replays run one at a time and each reads the rejects once
    it holds the lock, so a replay repeated (or racing another) finds nothing left to load.
    """
    report = SyncReport(spec.name, spec.table, REPLAY_PARTITION, run_id, full=False)
    session = SyncSession(connect, spec, options, report, replay=True)
    return session.run(_unresolved(connect, spec, where, options.chunk_size))


def _unresolved(
    connect: ConnectionSource, spec: LoadSpec, where: RejectFilter, batch: int
) -> Iterator[tuple]:
    """Stream (fingerprint, raw) of the selected rejects through a server-side cursor."""
    clause, params = where.clause()
    query = sql.SQL(
        "select fingerprint, raw from sync_rejects r where r.source = %(source)s"
        " and r.scope = %(scope)s::jsonb and not r.raw ? %(unstorable)s and {} order by r.id"
    ).format(clause)
    params |= {"source": spec.name, "scope": Jsonb(dict(spec.scope)), "unstorable": UNSTORABLE_KEY}
    with session_connection(connect) as conn, conn.cursor(name="replay_rejects") as cur:
        cur.itersize = batch
        cur.execute(query, params)
        yield from cur


def new_run_id() -> str:
    """A replay's run id when no Dagster run gives one: it tags what stays rejected."""
    return f"replay-{uuid.uuid4().hex[:12]}"


def slices(specs: Sequence[LoadSpec]) -> Jsonb:
    """The (source, scope) pairs of some load specs, as one jsonb parameter."""
    return Jsonb([{"source": spec.name, "scope": dict(spec.scope)} for spec in specs])


def list_rejects(
    conn: psycopg.Connection,
    specs: Sequence[LoadSpec],
    where: RejectFilter = ALL_UNRESOLVED,
    *,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The selected unresolved rejects of these slices, newest first, without their raw record."""
    clause, params = where.clause()
    query = sql.SQL(
        "select r.id, r.source, r.scope, r.record_key, r.reason, r.partition_key,"
        " r.first_seen, r.last_seen, r.times_seen from sync_rejects r"
        " join jsonb_to_recordset(%(slices)s) s(source text, scope jsonb)"
        " on s.source = r.source and s.scope = r.scope"
        " where {} order by r.last_seen desc, r.id desc limit %(limit)s"
    ).format(clause)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params | {"slices": slices(specs), "limit": limit}).fetchall()


@dataclass(frozen=True)
class StillRejected:
    """What a replay left rejected: counts by (current) reason and a sample."""

    by_reason: Mapping[str, int]
    samples: list[dict[str, Any]]


def still_rejected(conn: psycopg.Connection, spec: LoadSpec, run_id: str) -> StillRejected:
    """The rejects of `spec` that replay `run_id` tried and could not load."""
    params = {"source": spec.name, "scope": Jsonb(dict(spec.scope)), "run": run_id}
    mine = (
        " from sync_rejects where source = %(source)s and scope = %(scope)s::jsonb"
        " and run_id = %(run)s and resolved_at is null"
    )
    counts = conn.execute(
        "select reason, count(*)" + mine + " group by reason order by 2 desc, 1", params
    ).fetchall()
    with conn.cursor(row_factory=dict_row) as cur:
        samples = cur.execute(
            "select id, record_key, reason" + mine + " order by id limit %(limit)s",
            params | {"limit": SAMPLE_SIZE},
        ).fetchall()
    return StillRejected({reason: int(n) for reason, n in counts}, samples)
