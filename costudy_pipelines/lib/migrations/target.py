"""One database in one environment, with the URL resolved: what every runner step works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from costudy_pipelines.lib import pg

APPLICATION_NAME = "costudy-migrate"  # how other sessions see the runner in pg_stat_activity


@dataclass(frozen=True)
class Target:
    database: str  # the migration folder's name, e.g. "platform"
    environment: str  # e.g. "dev", "prod"
    url: str = field(repr=False)
    source: str = "DATABASE_URL"  # the variable the URL came from, named in error messages
    production: bool = False

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
        try:
            return psycopg.connect(
                self.dsn,
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=10,
                application_name=APPLICATION_NAME,
            )
        except psycopg.Error as exc:
            raise pg.explain_connection_error(exc, self.url, source=self.source) from None
