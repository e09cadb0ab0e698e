"""One resource per database connection; URLs come from the environment, never from code."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import sqlalchemy as sa
from pydantic import PrivateAttr

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.settings import DATABASES


class PostgresResource(dg.ConfigurableResource):
    """A PostgreSQL database. `url` comes from an EnvVar; `env_var` names it in error messages."""

    url: str
    env_var: str

    _engine: sa.Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = pg.make_engine(self.url, source=self.env_var)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = pg.make_engine(self.url, source=self.env_var)
        return self._engine

    @property
    def masked_url(self) -> str:
        return pg.mask(self.url)

    def connect(self, *, autocommit: bool = False, utc: bool = False) -> psycopg.Connection:
        """A plain psycopg connection (COPY, set-based SQL, temporary tables) through
        pg.connect: the TLS policy, errors naming env_var, never the password."""
        return pg.connect(self.url, source=self.env_var, autocommit=autocommit, utc=utc)

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction; connection failures name the variable, not a trace."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            if exc.connection_invalidated or "connect" in str(exc.orig).lower():
                cause = exc.orig or exc  # the driver's own error, when SQLAlchemy kept it
                raise pg.explain_connection_error(cause, self.url, source=self.env_var) from None
            raise


def database_resource_key(embedded_name: str) -> str:
    return f"{embedded_name}_db"


# Dagster's own storage is configured in dagster.yaml, not a resource of the code.
DATABASE_RESOURCES: dict[str, PostgresResource] = {
    database_resource_key(spec.embedded_name): PostgresResource(
        url=dg.EnvVar(spec.env_var), env_var=spec.env_var
    )
    for spec in DATABASES
    if spec.env_var != "DAGSTER_PG_URL"
}

defs = dg.Definitions(resources=DATABASE_RESOURCES)
