"""One runner per database at a time: a session-level advisory lock on a dedicated connection.

The lock lives on its own connection so that nothing the migrations do to their session
(DISCARD ALL between files, a failed transaction, a dropped connection) can release it early.
Waiting is bounded by `lock_timeout`; on timeout the error names the session that holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from costudy_pipelines.lib.migrations.errors import LockTimeout
from costudy_pipelines.lib.migrations.target import Target

# A fixed 64-bit key, the same for every runner: advisory locks are scoped per database.
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"costudy-pipelines schema migrations").digest()[:8], "big", signed=True
)

_HOLDER_SQL = """
select a.pid, a.application_name, a.usename, a.client_addr::text, a.backend_start,
       now() - coalesce(a.xact_start, a.backend_start) as held_for
  from pg_locks l join pg_stat_activity a on a.pid = l.pid
 where l.locktype = 'advisory' and l.granted and l.database = (
           select oid from pg_database where datname = current_database())
   and l.classid = %s and l.objid = %s and l.objsubid = 1
"""


def _key_halves() -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: high and low 32 bits as unsigned oids."""
    unsigned = LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _holder(conn: psycopg.Connection) -> str:
    row = conn.execute(_HOLDER_SQL, _key_halves()).fetchone()
    if row is None:
        return "the holder released it meanwhile"
    pid, application, user, client, started, _ = row
    origin = client or "a local socket"
    return (
        f"held by pid {pid} ({application or 'no application_name'}, user {user}, from "
        f"{origin}, connected {started:%Y-%m-%d %H:%M:%S %Z})"
    )


@contextmanager
def migration_lock(target: Target, *, timeout_s: float) -> Iterator[None]:
    """Hold the database's migration lock for the duration; LockTimeout after `timeout_s`."""
    conn = target.connect()
    try:
        # lock_timeout 0 would mean "wait forever": never send it.
        conn.execute(
            "select set_config('lock_timeout', %s, false)", (f"{max(1, int(timeout_s * 1000))}ms",)
        )
        try:
            conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            raise LockTimeout(
                f"{target.label}: another migration runner holds the lock "
                f"({_holder(conn)}); waited {timeout_s:g}s — let it finish, or end that "
                "session if it is stuck"
            ) from None
        yield
    finally:
        conn.close()  # ending the session releases the lock, even after an error
