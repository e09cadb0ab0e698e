"""psycopg connections for the reverse sync: autocommit (every transaction explicit), UTC."""

from __future__ import annotations

import psycopg

from costudy_pipelines.lib import pg


def open_connection(url: str, *, source: str) -> psycopg.Connection:
    """An autocommit connection whose session time zone is UTC (the fingerprints render
    timestamps as text, which must not depend on the server's zone). `source` names the
    variable `url` came from, for error messages; the password is never shown."""
    conn = pg.connect(url, source=source, autocommit=True)
    conn.execute("set time zone 'UTC'")
    return conn
