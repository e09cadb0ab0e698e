"""psycopg connections for the reverse sync: autocommit (every transaction explicit), UTC."""

from __future__ import annotations

import psycopg

from costudy_pipelines.lib import pg


def open_connection(url: str, *, source: str) -> psycopg.Connection:
    """An autocommit connection whose session time zone is UTC (the fingerprints render
    timestamps as text, which must not depend on the server's zone). `source` names the
    variable `url` came from, for error messages; the password is never shown."""
    try:
        conn = psycopg.connect(
            pg.libpq_dsn(url, source=source), autocommit=True, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        raise pg.explain_connection_error(exc, url, source=source) from None
    conn.execute("set time zone 'UTC'")
    return conn
