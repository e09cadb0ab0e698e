"""One database in one environment, with the URL resolved: what every runner step works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations.tracking import DEFAULT, TrackingTable

APPLICATION_NAME = "costudy-migrate"  # how other sessions see the runner in pg_stat_activity


@dataclass(frozen=True)
class Timeouts:
    """PostgreSQL's lock_timeout and statement_timeout for the session running the files.

    A migration waiting for a table lock queues every later query on that table behind it:
    a bounded wait fails the file (rolled back whole) instead of stalling the application.
    0 means no limit.
    """

    lock_s: float = 10.0
    statement_s: float = 0.0

    def settings(self) -> tuple[str, str]:
        return f"{round(self.lock_s * 1000)}ms", f"{round(self.statement_s * 1000)}ms"


@dataclass(frozen=True)
class Target:
    database: str  # the migration folder's name, e.g. "platform"
    environment: str  # e.g. "dev", "prod"
    url: str = field(repr=False)
    source: str = "DATABASE_URL"  # the variable the URL came from, named in error messages
    production: bool = False
    tracking: TrackingTable = DEFAULT
    placeholders: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    timeouts: Timeouts = Timeouts()
    # Files whose destructive statements this environment approves: file name → reason.
    approvals: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.database}/{self.environment}"

    @property
    def masked_url(self) -> str:
        return pg.mask(self.url)

    @property
    def dsn(self) -> str:
        return pg.libpq_dsn(self.url, source=self.source)

    def connect(self) -> psycopg.Connection:
        """An autocommit session; the runner opens its own transactions.

        Server-side prepared statements are off: the runner resets the session between files
        (DISCARD ALL), which would silently drop them.
        """
        return pg.connect(
            self.url,
            source=self.source,
            autocommit=True,
            application_name=APPLICATION_NAME,
            prepared_statements=False,
        )

    def set_timeouts(self, conn: psycopg.Connection) -> None:
        """Bound the session's lock waits and statements (again after every DISCARD ALL)."""
        lock, statement = self.timeouts.settings()
        conn.execute(
            "select set_config('lock_timeout', %s, false),"
            " set_config('statement_timeout', %s, false)",
            (lock, statement),
        )
