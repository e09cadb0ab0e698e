"""The load engine: stream validated records into the warehouse, set-based, in one transaction.

Per chunk (bounded memory): validate and serialise in the calling thread, while a loader
thread COPYs the previous chunk into a temporary staging table and applies it with a handful
of set-based statements (users by email with field priority, source rows by key, written only
when their content hash changed). A partition's whole session is ONE transaction: a crash
leaves nothing half-written; sync_log records the session either way.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading import sync_log
from costudy_pipelines.lib.loading.canonical import (
    UnstorableRecord,
    canonical_json,
    scope_prefix,
    sha256,
    storable_reject_json,
)
from costudy_pipelines.lib.loading.copy_payload import CopyPayloadWriter, Payload, copy_payload
from costudy_pipelines.lib.loading.report import (
    FAILED,
    PARTIAL,
    SUCCESS,
    SyncFailed,
    SyncReport,
    WarehouseNotMigrated,
)
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS, KeyKind, LoadOptions, LoadSpec
from costudy_pipelines.lib.loading.statements import (
    RECOMPUTE,
    RESOLVE_REJECTS,
    RESOLVE_REJECTS_BY_KEY,
    SEEN,
    STAGE,
    STAGE_USERS,
    UPSERT_REJECTS,
    USER_CANDIDATE_TYPES,
    Query,
    SessionStatements,
    build_statements,
    recompute_users,
    user_params,
)
from costudy_pipelines.lib.validation import Reject, ValidRecord, validate

ConnectionSource = str | Callable[[], psycopg.Connection]
# Submits a probe of some entries to the probe thread: the future's keys are not unchanged.
_Prober = Callable[[dict[Any, "_Entry"]], Future[set[Any]]]
PROBE_PARTS = 4
# Dead rows a staging table may hold before a session truncates it instead of deleting its
# rows (SyncSession._clear_staging): a day's few rows cost a scan of at most this many more.
STAGING_DEAD_ROWS = 2_000
_STAGE, _STAGE_USERS = STAGE.as_string(), STAGE_USERS.as_string()
# (fingerprint of a replayed reject or None, raw record)
_Item = tuple[bytes | None, Any]


def session_connection(connect: ConnectionSource) -> psycopg.Connection:
    """A connection from a URL (through pg.connect) or a factory (which must not return
    autocommit)."""
    return (
        pg.connect(connect, source="the warehouse URL") if isinstance(connect, str) else connect()
    )


def connector(url: str, *, source: str) -> Callable[[], psycopg.Connection]:
    """A ConnectionSource for a URL from the environment variable `source`: the project's TLS
    policy, and connection failures as DatabaseConfigError naming the variable (URL masked)."""
    pg.libpq_dsn(url, source=source)  # a malformed URL fails here, before any session starts
    return functools.partial(pg.connect, url, source=source)


class SessionHost:
    """What the sessions of one run share, so that a session costs its own work only.

    Per run (one host per load spec, opened at its first session): the session connection
    with its settings and its backend's identity (for the RUNNING rows), staging tables
    (created once; each session leaves them empty, see SyncSession._commit) and the seen
    keys' index; the source's registration for user field recomputes; the closing of RUNNING
    sync_log rows whose backend is gone; the autocommit probe connection (opened at the first
    session that probes); the loader and probe threads; the statements (psycopg prepares the
    ones that repeat on its connection).
    Per session: the RUNNING sync_log row, then ONE transaction (locks, chunks, soft delete,
    outcome) that commits or rolls back alone. A session that leaves the connection broken
    drops it; the next session opens a new one.

    The session connection is in autocommit mode: each session opens its transaction itself
    with the statements that follow BEGIN, and closes it with the ones before COMMIT, in one
    round trip each (SyncSession._begin, _commit).
    """

    def __init__(self, connect: ConnectionSource, spec: LoadSpec) -> None:
        self.connect = connect
        self.spec = spec
        self._statements: dict[bool, SessionStatements] = {}
        self._bound: dict[tuple[str, tuple[Any, ...]], sql.SQL] = {}
        self._conn: psycopg.Connection | None = None
        self._probe: psycopg.Connection | None = None
        self._payloads: _PayloadWriters | None = None
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        self._abandoned_closed = False
        self.identity: tuple[int, datetime] | None = None  # the session backend's (pid, start)
        # rows deleted from the staging tables since they were last truncated (dead tuples:
        # a temp table is never vacuumed), see SyncSession._clear_staging
        self.dead_rows: dict[str, int] = {}

    def __enter__(self) -> SessionHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def statements(self, *, windowed: bool) -> SessionStatements:
        if windowed not in self._statements:
            self._statements[windowed] = build_statements(self.spec, windowed=windowed)
        return self._statements[windowed]

    def bound(
        self, conn: psycopg.Connection, statement: Query, params: Mapping[str, Any]
    ) -> sql.SQL:
        """`statement` with `params` bound into its text, for parameters that are the same for
        every session of the run (the user parameters, the scope): psycopg caches the
        conversion of a query with parameters only up to 4 KB, and the users upsert (7 KB)
        was parsed for its placeholders again at every chunk (about 0.4 ms)."""
        values = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())
        key = (statement.as_string(), values)
        if key not in self._bound:
            self._bound[key] = sql.SQL(psycopg.ClientCursor(conn).mogrify(statement, params))
        return self._bound[key]

    def connection(self) -> psycopg.Connection:
        """The session connection, ready: opened and set up at the first session (and again
        after a session broke it)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop(self._conn)
        conn = session_connection(self.connect)
        try:
            conn.autocommit = True  # each session says BEGIN and COMMIT (SyncSession._begin)
            self._set_up(conn)
        except psycopg.errors.UndefinedTable as exc:  # the first statement on its tables
            error = WarehouseNotMigrated.on(conn, exc)
            conn.close()
            raise error from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _set_up(self, conn: psycopg.Connection) -> None:
        statements = self.statements(windowed=False)
        with conn.transaction():
            # a chunk's staging table stays in memory (must precede the first temp table use);
            # hash joins of a chunk, and the soft delete's anti-join, stay in memory
            conn.execute("set temp_buffers = '256MB'")
            conn.execute("set work_mem = '64MB'")
            # commits wait for the WAL flush only where the session says so: a session that
            # wrote rows (see SyncSession.run); the RUNNING rows and no-op sessions never do
            conn.execute("set synchronous_commit = off")
            for statement in statements.create_temp:
                conn.execute(statement)
            # the soft delete's anti-join probes the seen keys by index (see index_seen)
            conn.execute(statements.index_seen)
        # committed on its own: inside a session, the first two sessions of a table would wait
        # on each other's uncommitted row until the first one commits
        with conn.transaction():
            conn.execute(statements.register_source)
        self.identity = sync_log.backend_identity(conn)
        self.dead_rows = {}  # new tables: nothing dead in them
        if not self._abandoned_closed:
            sync_log.close_abandoned(conn)
            self._abandoned_closed = True
        self._payloads = _PayloadWriters(
            CopyPayloadWriter(conn, statements.stage_types),
            CopyPayloadWriter(conn, USER_CANDIDATE_TYPES),
            CopyPayloadWriter(conn, (self.spec.key_sql_type,)),
        )

    def payloads(self) -> _PayloadWriters:
        assert self._payloads is not None, "connection() sets the payload writers up"
        return self._payloads

    def probe(self) -> psycopg.Connection:
        """The probes' autocommit connection (the probe thread's only)."""
        if self._probe is None or self._probe.closed or self._probe.broken:
            self._drop(self._probe)
            self._probe = session_connection(self.connect)
            self._probe.autocommit = True
        return self._probe

    def pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        """(loader, probes): one thread each, for every session of the run."""
        if self._pools is None:
            self._pools = (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-loader"),
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-probe"),
            )
        return self._pools

    def close(self) -> None:
        if self._pools is not None:
            for pool in self._pools:
                pool.shutdown(wait=True)
            self._pools = None
        self._drop(self._probe)
        self._drop(self._conn)
        self._probe = self._conn = None

    @staticmethod
    def _drop(conn: psycopg.Connection | None) -> None:
        if conn is not None and not conn.closed:
            conn.close()


def sync_session(
    connect: ConnectionSource | SessionHost,
    spec: LoadSpec,
    records: Iterable[Mapping[str, Any]],
    *,
    partition: str | None = None,
    run_id: str | None = None,
    full: bool = False,
    window: TimeWindow | None = None,
    force_delete: bool = False,
    max_delete_share: float | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Load one partition (or one full extract) of a source; returns the session's report.

    records: the raw records exactly as the source returned them, streamed (any iterable;
    flatten pages with itertools.chain.from_iterable). An exception raised by the iterable
    fails the session like any other error.
    full: the records are the source's complete content (within spec.scope): rows not seen
    are soft-deleted, unless the extract was empty, everything was rejected, or more than
    max_delete_share (default options.max_delete_share, 10 %) of the live rows would go and
    force_delete is not set; a refusal is reported (status PARTIAL) with counts and why.
    window: the records are the source's complete content for [window.start, window.end) of
    spec.window_column (a day partition: the source filtered by that time). Rows of the
    window not seen are soft-deleted, with the full sync's guards but two differences:
    - an empty extract is a quiet day when the warehouse holds nothing in the window, and is
      refused (unless force_delete: a day whose records were all deleted) when it does;
    - the share is taken of the live rows of the whole slice, not of the window, so a small
      day may lose one of its few rows; the empty-extract rule guards the day as a whole.
    A record the source re-dated into another window is soft-deleted by its old window's sync
    and revived, with its new time, by the sync of its new window (nothing is lost).
    Raises SyncFailed (after recording FAILED in sync_log) when anything fails; then nothing
    of the session was written.
    connect: a URL or connection factory (the session opens and closes its connections), or
    the SessionHost of the run the session belongs to (its connections and staging tables
    reused; see sync_windows).
    """
    if full and window is not None:
        raise ValueError("a sync is either full (the whole source) or of a window, not both")
    report = SyncReport(spec.name, spec.table, partition, run_id, full)
    share = options.max_delete_share if max_delete_share is None else max_delete_share
    session = SyncSession(
        connect,
        spec,
        options,
        report,
        window=window,
        force_delete=force_delete,
        max_share=share,
    )
    return session.run((None, raw) for raw in records)


@dataclass
class _Chunk:
    """One chunk, probed, validated and serialised, ready for COPY and the set-based statements."""

    staged: int = 0  # rows in stage_payload
    users: int = 0  # rows in user_payload
    seen: int = 0  # rows in seen_payload
    # binary COPY streams, serialised by the preparing thread
    stage_payload: Payload = field(default_factory=list)
    user_payload: Payload = field(default_factory=list)
    seen_payload: Payload = field(default_factory=list)
    reject_fingerprints: list[bytes] = field(default_factory=list)
    reject_keys: list[str | None] = field(default_factory=list)
    reject_raws: list[str] = field(default_factory=list)
    reject_reasons: list[str] = field(default_factory=list)
    resolved: list[bytes] = field(default_factory=list)
    rejected_fingerprints: set[bytes] = field(default_factory=set)


@dataclass(frozen=True)
class _PayloadWriters:
    """The session's COPY serialisers: staged rows, user candidates, seen keys."""

    stage: CopyPayloadWriter
    users: CopyPayloadWriter
    seen: CopyPayloadWriter


@dataclass(slots=True)
class _Entry:
    """A record with its identity and content hash, before validation."""

    fingerprint: bytes | None
    raw: Any
    text: bytes
    content_hash: bytes
    part: int  # which probe of its chunk judges it


def _replaces(observed: datetime | None, current_observed: datetime | None) -> bool:
    """Within one chunk: a dated value beats an undated one; among dated ones the newest."""
    if observed is None:
        return current_observed is None
    return current_observed is None or observed >= current_observed


class SyncSession:
    """One session: a RUNNING sync_log row, then one transaction that loads every chunk.

    Per chunk: canonical JSON and content hash of every record; probe queries (one per
    quarter chunk, on a second, autocommit connection and a thread of their own) return the
    keys that are new, changed or soft-deleted; only those are validated, staged and written.
    A re-sync without changes therefore validates nothing and writes nothing. A session that
    covers no live row when it starts (`fresh`) skips the probes.
    """

    def __init__(
        self,
        connect: ConnectionSource | SessionHost,
        spec: LoadSpec,
        options: LoadOptions,
        report: SyncReport,
        *,
        window: TimeWindow | None = None,
        force_delete: bool = False,
        max_share: float = 0.10,
        replay: bool = False,
    ) -> None:
        # a session of a run uses the run's host; a session on its own, a host of its own
        self.owns_host = not isinstance(connect, SessionHost)
        self.host = connect if isinstance(connect, SessionHost) else SessionHost(connect, spec)
        if self.host.spec is not spec:
            raise ValueError(f"a SessionHost of {self.host.spec.name} cannot load {spec.name}")
        self.spec = spec
        self.options = options
        self.report = report
        self.window = window
        self.force_delete = force_delete
        self.max_share = max_share
        self.replay = replay
        self.statements: SessionStatements = self.host.statements(windowed=window is not None)
        self.scope_json = dict(spec.scope)
        self.scope_params = {f"scope_{name}": value for name, value in spec.scope.items()}
        # what this session covers: the slice, or the slice's rows within the window
        self.covered_params: dict[str, Any] = dict(self.scope_params)
        if window is not None:
            self.covered_params |= {"window_start": window.start, "window_end": window.end}
        row_hashed = spec.key_kind is KeyKind.ROW_HASH
        self.row_hash_prefix = scope_prefix(spec.scope) if row_hashed else None
        self.user_params = user_params(spec, options)
        self.timings: dict[str, float] = {"prepare_s": 0.0, "probe_s": 0.0, "load_s": 0.0}
        # counted by the preparing thread and the loader thread separately, summed at the end
        self._unchanged_by_probe = 0
        self._unchanged_by_upsert = 0
        # Nothing live in what the session covers when it started (a first sync, a new day):
        # every record is new, so no probe, no seen keys and nothing to soft-delete. Set once
        # the session holds its lock; ON CONFLICT still settles a row another session adds.
        self.fresh = False
        # Whether a row that backed a user's won field was changed or soft-deleted: those
        # users' fields are recomputed from the live rows before the session commits.
        self._recompute = False
        self._staged = False  # whether a chunk of this session was staged yet
        self._exhausted = False  # whether the last chunk prepared was the records' last
        # rows this session put in each staging table (which ones it must leave empty)
        self._staging_rows: dict[str, int] = {}

    @property
    def complete(self) -> bool:
        """Whether the records are everything the source holds in what the session covers."""
        return self.report.full or self.window is not None

    # -- the session ------------------------------------------------------------------------

    def run(self, items: Iterable[_Item]) -> SyncReport:
        started = time.perf_counter()
        try:
            conn = self.host.connection()
            self.report.sync_log_id = sync_log.start(
                conn, self.report, self.spec.scope, self.host.identity
            )
            self._payloads = self.host.payloads()
            try:
                self.fresh = self._begin(conn)
                try:
                    self._stream(conn, items)
                    if self.complete:
                        self._soft_delete(conn)
                    if self._recompute:
                        self._recompute_users(conn)
                    incomplete = self.report.rejected or self.report.soft_delete_refused
                    self.report.status = PARTIAL if incomplete else SUCCESS
                    self._record_timings(started)
                    self._commit(conn)
                except BaseException:
                    _rollback(conn)
                    raise
            except BaseException as exc:
                self._record_failure(conn, exc, started)
                raise SyncFailed(
                    f"sync of {self.spec.name} (partition {self.report.partition}) failed and "
                    f"wrote nothing: {self.report.error}",
                    self.report,
                ) from exc
        finally:
            if self.owns_host:
                self.host.close()
        self._record_timings(started)
        return self.report

    def _begin(self, conn: psycopg.Connection) -> bool:
        """Open the session's transaction, take its locks and say whether it is fresh (covers
        no live row): one round trip, BEGIN and two statements in one query string (each
        statement still takes its own snapshot, so the liveness check sees what committed
        before the locks were granted)."""
        cur = conn.execute(
            "; ".join(("begin", self._lock_statement(conn), self._any_live_covered(conn))),
            prepare=False,
        )
        while cur.nextset():
            pass  # the last statement's result: whether anything live is covered
        return not _scalar(cur)

    def _commit(self, conn: psycopg.Connection) -> None:
        """Leave the staging tables empty, record the outcome in sync_log and COMMIT: one
        round trip.

        A session that changed nothing but its sync_log row (an empty day, a re-sync without
        changes) commits without waiting for the WAL flush (a server crash could lose just
        the record of a no-op, which a rerun repeats); one that wrote rows is durable before
        this returns.
        """
        statements = self._clear_staging()
        if not self._wrote_nothing():
            statements.append("set local synchronous_commit = on")
        mogrify = psycopg.ClientCursor(conn).mogrify
        statements.append(
            mogrify(sync_log.FINISH, sync_log.finish_params(self.report, self._details()))
        )
        statements.append("commit")
        conn.execute("; ".join(statements), prepare=False)

    def _clear_staging(self) -> list[str]:
        """The statements that empty the staging tables this session used, before it commits.

        Temporary tables ON COMMIT DELETE ROWS were emptied by the server at every commit, all
        four of them and the seen keys' index, whether used or not: 1.5 - 2 ms per session,
        the largest cost of a small day. A DELETE of a day's few rows costs next to nothing,
        but leaves dead rows, which nothing vacuums in a temporary table; once a table holds
        more than STAGING_DEAD_ROWS of them (or this session's rows alone are that many), it
        is truncated instead (a new file, in the transaction: about a millisecond)."""
        dead = self.host.dead_rows
        statements = []
        for table, rows in self._staging_rows.items():
            if dead.get(table, 0) + rows > STAGING_DEAD_ROWS:
                statements.append(f"truncate {table}")
                dead[table] = 0
            else:
                statements.append(f"delete from {table}")
                dead[table] = dead.get(table, 0) + rows
        return statements

    def _staging(self, table: sql.Identifier, rows: int) -> None:
        """Note rows this session put into a staging table."""
        name = table.as_string()
        self._staging_rows[name] = self._staging_rows.get(name, 0) + rows

    def _lock_statement(self, conn: psycopg.Connection) -> str:
        """Serialise what must not overlap: a full sync excludes every other session of its
        slice (its soft delete must see their rows); partitions of a slice run side by side
        but one session per partition at a time (the slice's shared lock is taken first:
        select items are evaluated left to right)."""
        slice_name = f"{self.spec.table}|{canonical_json(self.scope_json).decode()}"
        mogrify = psycopg.ClientCursor(conn).mogrify
        if self.report.full:
            return mogrify("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (slice_name,))
        return mogrify(
            "select pg_advisory_xact_lock_shared(hashtextextended(%s, 0)),"
            " pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (slice_name, f"{slice_name}|{self.report.partition or ''}"),
        )

    def _any_live_covered(self, conn: psycopg.Connection) -> str:
        mogrify = psycopg.ClientCursor(conn).mogrify
        return mogrify(self.statements.any_live_covered, self.covered_params)

    def _wrote_nothing(self) -> bool:
        """Whether the session changed nothing in the warehouse but its sync_log row (an
        empty day, a re-sync without changes)."""
        report = self.report
        changes = (report.rejected, report.users_created, report.users_updated)
        return report.written == 0 and report.resolved_rejects == 0 and not any(changes)

    def _stream(self, conn: psycopg.Connection, items: Iterable[_Item]) -> None:
        """Prepare chunk N+1 while the loader thread applies chunk N (at most two in memory);
        a probe thread compares each part of chunk N+1 while the next part is identified."""
        host = self.host

        def prober(part: dict[Any, _Entry]) -> Future[set[Any]]:
            return host.pools()[1].submit(self._probe, host.probe(), part)

        pending: Future[None] | None = None
        records = iter(items)
        try:
            while True:
                with _young_collection_per_chunk():  # the source's parsing allocates too
                    chunk = self._prepare(records, prober)
                if chunk is None:
                    break
                if pending is not None:
                    pending.result()
                    pending = None
                if self._exhausted:  # nothing left to prepare meanwhile: no thread hand-off
                    self._load(conn, chunk)
                    break
                pending = host.pools()[0].submit(self._load, conn, chunk)
            if pending is not None:
                pending.result()
        finally:
            if pending is not None and not pending.done():
                pending.exception()  # wait: the connection must be idle before rollback

    # -- preparing chunks (calling thread) --------------------------------------------------

    def _prepare(self, records: Iterator[_Item], prober: _Prober) -> _Chunk | None:
        """The next chunk read from `records` and prepared; None when they are exhausted."""
        with self._timed("prepare_s"):
            return self._prepare_chunk(records, prober)

    def _prepare_chunk(self, records: Iterator[_Item], prober: _Prober) -> _Chunk | None:
        chunk = _Chunk()
        entries, unkeyed, changed, read = self._identify_and_probe(records, chunk, prober)
        if not read:
            return None
        self._unchanged_by_probe += len(entries) - len(changed)
        if self.replay:  # stored exactly as the reject holds it: nothing left to replay
            unchanged = entries.keys() - set(changed)
            chunk.resolved += [entries[k].fingerprint or entries[k].content_hash for k in unchanged]
        to_validate = [(key, entries[key]) for key in changed] + unkeyed
        by_key = self._validate(to_validate, chunk)
        if self.complete and not self.fresh:  # what the soft delete must spare
            seen = [(key,) for key in entries]
            seen += [(key,) for key in by_key if key not in entries]
            chunk.seen_payload = self._payloads.seen.payload(seen)
            chunk.seen = len(seen)
        if by_key:
            chunk.staged = len(by_key)
            chunk.stage_payload = self._payloads.stage.payload(
                (
                    key,
                    record.email,
                    entry.content_hash,
                    entry.text,
                    record.name,
                    record.username,
                    record.observed_at,
                    *record.values,
                )
                for key, (record, entry) in by_key.items()
            )
            candidates = self._user_candidates(by_key)
            chunk.users = len(candidates)
            chunk.user_payload = self._payloads.users.payload(candidates)
        self.report.records_in += read
        return chunk

    def _identify_and_probe(
        self, records: Iterator[_Item], chunk: _Chunk, prober: _Prober
    ) -> tuple[dict[Any, _Entry], list[tuple[None, _Entry]], list[Any], int]:
        """Read the next chunk: every record's identity, the keys that are new, changed or
        soft-deleted, and how many records were read.

        A chunk ends at options.chunk_size records or once its records' canonical JSON
        reaches options.chunk_bytes, so a chunk of large records holds no more memory than
        one of small ones. It is identified in PROBE_PARTS parts (a quarter of either bound);
        each part's probe runs on the probe thread while the next part is read and
        identified, so the server's comparison overlaps the hashing. The same key twice in a
        chunk: the last record wins, judged by its own part's probe.
        """
        options = self.options
        part_records = -(-options.chunk_size // PROBE_PARTS)
        part_bytes = -(-options.chunk_bytes // PROBE_PARTS)
        entries: dict[Any, _Entry] = {}
        unkeyed: list[tuple[None, _Entry]] = []
        probed: list[Future[set[Any]]] = []
        rejected_before = self.report.rejected  # identifying rejects what JSON cannot hold
        read = chunk_bytes = 0
        part: dict[Any, _Entry] = {}
        part_read = part_size = 0

        def close_part() -> None:
            entries.update(part)
            if part and not self.fresh:
                probed.append(prober(part))

        for item in records:
            size = self._identify(item, chunk, part, unkeyed, len(probed))
            read += 1
            part_read += 1
            part_size += size
            chunk_bytes += size
            if read >= options.chunk_size or chunk_bytes >= options.chunk_bytes:
                break
            if part_read >= part_records or part_size >= part_bytes:
                close_part()
                part, part_read, part_size = {}, 0, 0
        else:
            self._exhausted = True
        close_part()
        unstorable = self.report.rejected - rejected_before
        self.report.duplicates += read - unstorable - len(unkeyed) - len(entries)
        if self.fresh:
            return entries, unkeyed, list(entries), read
        changed_by_part = [future.result() for future in probed]
        changed = [key for key, entry in entries.items() if key in changed_by_part[entry.part]]
        return entries, unkeyed, changed, read

    def _identify(
        self,
        item: _Item,
        chunk: _Chunk,
        part: dict[Any, _Entry],
        unkeyed: list[tuple[None, _Entry]],
        number: int,
    ) -> int:
        """Canonical JSON, content hash and key of a record, into its part (the same key
        twice: the last wins); returns the canonical JSON's size in bytes."""
        fingerprint, raw = item
        try:
            text = canonical_json(raw)
        except UnstorableRecord as exc:
            key = _lenient_key(self.spec.validator.key, raw)
            self._reject(chunk, fingerprint, Reject(str(exc), raw, key))
            return 0
        entry = _Entry(fingerprint, raw, text, sha256(text), number)
        prefix = self.row_hash_prefix
        key = (
            sha256(prefix + text)
            if prefix is not None
            else _lenient_key(self.spec.validator.key, raw)
        )
        if key is None:
            unkeyed.append((None, entry))  # validation will say what is missing
        else:
            part[key] = entry
        return len(text)

    def _probe(self, probe: psycopg.Connection, entries: dict[Any, _Entry]) -> set[Any]:
        """The keys whose row is missing, different or soft-deleted (one query; probe thread)."""
        hashes = [entry.content_hash for entry in entries.values()]
        with self._timed("probe_s"):
            rows = probe.execute(self.statements.probe, (list(entries), hashes)).fetchall()
        return {row[0] for row in rows}

    def _validate(
        self, candidates: list[tuple[Any, _Entry]], chunk: _Chunk
    ) -> dict[Any, tuple[ValidRecord, _Entry]]:
        validator = self.spec.validator
        prefix = self.row_hash_prefix
        by_key: dict[Any, tuple[ValidRecord, _Entry]] = {}
        for key, entry in candidates:
            result = validate(validator, entry.raw)
            if isinstance(result, Reject):
                self._reject(chunk, entry.fingerprint, result, entry.text)
                continue
            if self.replay:
                chunk.resolved.append(entry.fingerprint or entry.content_hash)
            if prefix is None:
                key = result.key
            by_key[key] = (result, entry)
        return by_key

    def _user_candidates(self, by_key: dict[Any, tuple[ValidRecord, _Entry]]) -> list:
        """One candidate per email: the chunk's best name and username, with provenance."""
        table = self.spec.table
        candidates: dict[str, list[Any]] = {}
        for key, (record, _) in by_key.items():
            reference = f"{table}:{key if isinstance(key, str) else key.hex()}"
            slot = candidates.get(record.email)
            if slot is None:
                slot = [record.email, reference, None, None, None, None, None, None]
                candidates[record.email] = slot
            for value, offset in ((record.name, 2), (record.username, 5)):
                if value is not None and (
                    slot[offset] is None or _replaces(record.observed_at, slot[offset + 2])
                ):
                    slot[offset : offset + 3] = (value, reference, record.observed_at)
        return list(candidates.values())

    def _reject(
        self,
        chunk: _Chunk,
        fingerprint: bytes | None,
        reject: Reject,
        text: bytes | None = None,
    ) -> None:
        stored = text if text is not None else storable_reject_json(reject.raw)
        fingerprint = fingerprint or sha256(stored)
        self.report.rejected += 1
        if len(self.report.reject_samples) < self.options.reject_samples:
            self.report.reject_samples.append({"key": reject.key, "reason": reject.reason})
        if fingerprint in chunk.rejected_fingerprints:
            return  # the same bad record twice in one chunk: one reject row
        chunk.rejected_fingerprints.add(fingerprint)
        chunk.reject_fingerprints.append(fingerprint)
        chunk.reject_keys.append(reject.key)
        chunk.reject_raws.append(stored.decode())
        chunk.reject_reasons.append(reject.reason)

    # -- loading chunks (loader thread) -----------------------------------------------------

    def _load(self, conn: psycopg.Connection, chunk: _Chunk) -> None:
        with self._timed("load_s"), conn.cursor() as cur:
            if chunk.staged:
                with self._timed("load_copy_s"):
                    self._stage(cur, chunk)
                if not self.fresh:  # a fresh session stages new rows only: none backs a field
                    cur.execute(self.statements.mark_changed_winners)
                    self._recompute = self._recompute or cur.rowcount > 0
                    self._staging(RECOMPUTE, cur.rowcount)
                with self._timed("load_users_s"):
                    self._upsert_users(cur)
                with self._timed("load_rows_s"):
                    self._upsert_rows(cur, chunk)
            if chunk.seen_payload:
                copy_payload(cur, self.statements.copy_seen, chunk.seen_payload)
                self._staging(SEEN, chunk.seen)
            if chunk.reject_fingerprints:
                cur.execute(UPSERT_REJECTS, self._reject_params(chunk))
            if chunk.resolved:
                cur.execute(RESOLVE_REJECTS, self._resolve_params(chunk))
                self.report.resolved_rejects += cur.rowcount

    def _stage(self, cur: psycopg.Cursor, chunk: _Chunk) -> None:
        statements = self.statements
        # The staging tables start every session empty (see _clear_staging); truncating them
        # gives them new files (catalog writes), so only a session's later chunks truncate
        # the one before.
        if self._staged:
            cur.execute(statements.truncate)
            for table in (_STAGE, _STAGE_USERS):
                self._staging_rows[table] = self.host.dead_rows[table] = 0
        self._staged = True
        copy_payload(cur, statements.copy_stage, chunk.stage_payload)
        copy_payload(cur, statements.copy_users, chunk.user_payload)
        self._staging(STAGE, chunk.staged)
        self._staging(STAGE_USERS, chunk.users)

    def _upsert_users(self, cur: psycopg.Cursor) -> None:
        statement = self.host.bound(cur.connection, self.statements.upsert_users, self.user_params)
        created, changed = _counts(cur.execute(statement))
        self.report.users_created += created
        self.report.users_updated += changed

    def _upsert_rows(self, cur: psycopg.Cursor, chunk: _Chunk) -> None:
        statement = self.host.bound(cur.connection, self.statements.upsert_rows, self.scope_params)
        inserted, updated = _counts(cur.execute(statement))
        self.report.inserted += inserted
        self.report.updated += updated
        self._unchanged_by_upsert += chunk.staged - inserted - updated
        if self.spec.key_kind is KeyKind.EXTERNAL_ID:
            cur.execute(RESOLVE_REJECTS_BY_KEY, self._resolve_params(chunk))
            self.report.resolved_rejects += cur.rowcount

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    def _reject_params(self, chunk: _Chunk) -> dict[str, Any]:
        return {
            "source": self.spec.name,
            "scope": Jsonb(self.scope_json),
            "partition": self.report.partition,
            "run_id": self.report.run_id,
            "log_id": self.report.sync_log_id,
            "fingerprints": chunk.reject_fingerprints,
            "keys": chunk.reject_keys,
            "raws": chunk.reject_raws,
            "reasons": chunk.reject_reasons,
        }

    def _resolve_params(self, chunk: _Chunk) -> dict[str, Any]:
        return {
            "run_id": self.report.run_id,
            "source": self.spec.name,
            "scope": Jsonb(self.scope_json),
            "fingerprints": chunk.resolved,
        }

    # -- soft delete (full and windowed syncs) ----------------------------------------------

    def _soft_delete(self, conn: psycopg.Connection) -> None:
        """One pass: soft-delete the unseen rows under a savepoint, then keep or undo it.

        Counting first and deleting after would read the covered rows twice; the usual
        outcome (nothing or a few rows gone) needs only the UPDATE.
        """
        with self._timed("soft_delete_s"):
            where = self._covered_description()
            if self.report.records_in == 0 and self.window is None:
                self.report.soft_delete_refused = (
                    f"refused to soft-delete in {where}: the extract returned no records, "
                    "which is more likely a failed or filtered extract than an emptied source"
                )
                return
            if self.fresh:
                return  # nothing was live in what this sync covers: nothing can be unseen
            # a temp table has no statistics otherwise (its index is the host's, made per run)
            conn.execute(self.statements.analyze_seen)
            with conn.transaction() as savepoint:
                row = conn.execute(self.statements.soft_delete, self.covered_params).fetchone()
                unseen, backed_fields = row if row is not None else (0, 0)
                self._staging(RECOMPUTE, backed_fields)
                refusal = self._delete_refusal(conn, unseen, where) if unseen else None
                if refusal is not None:
                    self.report.soft_delete_refused = refusal
                    raise psycopg.Rollback(savepoint)
                self.report.soft_deleted = unseen
                self._recompute = self._recompute or backed_fields > 0

    def _recompute_users(self, conn: psycopg.Connection) -> None:
        """Name and username of the users whose won field lost its row, from the live rows of
        every registered source table, by priority, with the provenance (one statement)."""
        with self._timed("recompute_users_s"):
            sources = conn.execute(
                "select source_table, family, key_column from user_field_sources"
                " order by source_table"
            ).fetchall()
            recomputed = conn.execute(recompute_users(sources), self.user_params).rowcount
            self.report.users_updated += recomputed

    def _covered_description(self) -> str:
        """What the session covers, for refusal messages."""
        where = f"{self.report.table}{f' {self.scope_json}' if self.scope_json else ''}"
        if self.window is not None:
            where += (
                f" with {self.spec.window_column} in [{self.window.start.isoformat()}, "
                f"{self.window.end.isoformat()})"
            )
        return where

    def _delete_refusal(self, conn: psycopg.Connection, unseen: int, where: str) -> str | None:
        """Why `unseen` live rows must not be soft-deleted after all, or None when they may."""
        report = self.report
        if report.records_in == 0 and not self.force_delete:
            return (
                f"refused to soft-delete the {unseen} live rows in {where}: the extract "
                "returned no records for the window, which is more likely a failed or "
                "filtered extract than a day whose records were all deleted; if they were, "
                "rerun with force_delete"
            )
        if 0 < report.records_in == report.rejected:
            return (
                f"refused to soft-delete in {where}: all {report.records_in} records were "
                "rejected, so this sync cannot tell which rows still exist"
            )
        # live rows before the delete: those still live after it, and the ones it took
        live = _scalar(conn.execute(self.statements.count_live, self.scope_params)) + unseen
        if self.force_delete or unseen <= self.max_share * live:
            return None
        return (
            f"refused to soft-delete {unseen} of {live} live rows ({unseen / live:.1%}) of "
            f"{where}: more than the allowed {self.max_share:.0%} are missing from this "
            "complete sync; if the source really dropped them, rerun with force_delete"
        )

    # -- outcome ----------------------------------------------------------------------------

    def _record_timings(self, started: float) -> None:
        self.report.unchanged = self._unchanged_by_probe + self._unchanged_by_upsert
        self.report.timings = {
            **{name: round(value, 3) for name, value in self.timings.items()},
            "total_s": round(time.perf_counter() - started, 3),
        }

    def _details(self) -> dict[str, Any]:
        window = self.window
        return {
            "window": None
            if window is None
            else {
                "column": self.spec.window_column,
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
            },
            "reject_samples": self.report.reject_samples,
            "soft_delete_refused": self.report.soft_delete_refused,
            "resolved_rejects": self.report.resolved_rejects,
            "timings": self.report.timings,
        }

    def _record_failure(self, conn: psycopg.Connection, exc: BaseException, started: float) -> None:
        """Mark the session FAILED in its own transaction; nothing else of it was committed."""
        report = self.report
        report.status = FAILED
        report.error = f"{type(exc).__name__}: {exc}".strip()[: sync_log.MAX_ERROR_CHARS]
        for name in ("inserted", "updated", "soft_deleted"):
            setattr(report, name, 0)
        self._unchanged_by_probe = self._unchanged_by_upsert = 0
        report.users_created = report.users_updated = report.resolved_rejects = 0
        self._record_timings(started)
        if report.sync_log_id is None:
            return
        try:
            target = conn if not conn.broken else session_connection(self.host.connect)
            with target.transaction():
                sync_log.finish(target, report, self._details())
            if target is not conn:
                target.close()
        except psycopg.Error as log_error:  # the warehouse itself is gone: say so, keep the cause
            report.error += f" (and sync_log could not be updated: {log_error})"


@contextmanager
def _young_collection_per_chunk() -> Iterator[None]:
    """Pause the cyclic GC while a chunk is read and prepared, then collect young objects once.

    Reading and preparing allocate hundreds of thousands of containers; the automatic
    collector would rescan the whole live chunk many times over (~30 % of the preparing
    time). Reference counting still frees everything acyclic as it goes, so the one
    collection at the end sees only what outlives the chunk's raw records.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect(0)
        _release_free_memory()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc: nothing to release this way
        return None


_MALLOC_TRIM = _malloc_trim()


def _release_free_memory() -> None:
    """Hand the allocator's free pages back to the system once a chunk's records are gone.

    A chunk's records and buffers are freed between chunks, but glibc keeps the pages of a
    fragmented heap (and of each thread's arena): the process's peak RSS then crept up with
    the number of chunks, not with their size (a bare COPY loader of the same records grew
    248 -> 337 MB from a 100k to a 1M world). malloc_trim(0) returns every whole free page;
    it takes about a millisecond.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _lenient_key(key_of: Callable[[Any], Any], raw: Any) -> Any:
    try:
        return key_of(raw)
    except Exception:  # a record too broken to read an id from: validation will reject it
        return None


def _rollback(conn: psycopg.Connection) -> None:
    """End a failed session's transaction (the connection is in autocommit mode, so the
    session says ROLLBACK itself); a broken connection has none left to end."""
    if conn.broken or conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
        return
    with suppress(psycopg.Error):  # gone meanwhile: the host drops a broken connection
        conn.rollback()


def _counts(cur: psycopg.Cursor) -> tuple[int, int]:
    row = cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _scalar(cur: psycopg.Cursor) -> int:
    row = cur.fetchone()
    assert row is not None
    return int(row[0])
