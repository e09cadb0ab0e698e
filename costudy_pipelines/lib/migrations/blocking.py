"""Who blocks the runner's session while a file waits for a lock.

When a file fails on lock_timeout (or statement_timeout while waiting), the server has already
given up the wait: pg_blocking_pids() of the runner is empty by then. So a watcher on its own
connection samples pg_blocking_pids() + pg_stat_activity while files run, and the error names
the last session seen blocking the runner during that file.
"""

from __future__ import annotations

import threading
from types import TracebackType

import psycopg

from costudy_pipelines.lib.migrations.target import Target

SAMPLE_INTERVAL_S = 0.1
_BLOCKERS_SQL = """
select a.pid, a.application_name, a.usename, a.client_addr::text, a.state,
       now() - coalesce(a.xact_start, a.backend_start) as held_for, left(a.query, 160)
  from pg_stat_activity a
 where a.pid = any(pg_blocking_pids(%s))
 order by a.pid
"""
# SQLSTATEs of a file that gave up waiting: lock_not_available, query_canceled.
WAIT_ERRORS = frozenset({"55P03", "57014"})


def describe_blockers(rows: list[tuple]) -> str:
    """`pid N (application, user, from where, state, in its transaction for T; last query …)`"""
    described = []
    for pid, application, user, client, state, held_for, query in rows:
        seconds = held_for.total_seconds() if held_for is not None else 0.0
        described.append(
            f"pid {pid} ({application or 'no application_name'}, user {user}, from "
            f"{client or 'a local socket'}, {state}, in its transaction for {seconds:.0f}s; "
            f"last query: {' '.join((query or '').split())})"
        )
    return "; ".join(described)


class BlockerWatch:
    """Samples the sessions blocking `pid` until closed; `blockers` is the latest seen."""

    def __init__(self, target: Target, pid: int) -> None:
        self.pid = pid
        self.blockers: str | None = None
        self._conn = target.connect()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="migration-blockers", daemon=True)

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def forget(self) -> None:
        """A new file starts: blockers of the previous one are not its blockers."""
        self.blockers = None

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            try:
                rows = self._conn.execute(_BLOCKERS_SQL, (self.pid,)).fetchall()
            except psycopg.Error:
                return  # the watcher only adds detail to errors; it never causes one
            if rows:
                self.blockers = describe_blockers(rows)
