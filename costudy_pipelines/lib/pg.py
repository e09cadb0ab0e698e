"""PostgreSQL URLs and connections: masking, TLS policy, and errors an operator can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL, make_url

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


class DatabaseConfigError(RuntimeError):
    """A database URL that is malformed, unreachable or refused: the message says which and why."""


def parse_url(url: str, *, source: str) -> URL:
    """Parse a PostgreSQL URL, naming `source` (the variable it came from) when it is malformed."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseConfigError(
            f"{source} is not a valid database URL (expected "
            "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE)"
        ) from None
    if not parsed.drivername.startswith("postgres"):
        raise DatabaseConfigError(
            f"{source} must be a postgresql:// URL, not {parsed.drivername}://"
        )
    if not parsed.database:
        raise DatabaseConfigError(f"{source} names no database ({mask(url)})")
    return parsed


def mask(url: str | URL) -> str:
    """The URL with its password replaced, safe for logs, metadata and error messages."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def is_local(url: URL) -> bool:
    host = url.host or url.query.get("host", "")
    return host in LOCAL_HOSTS or str(host).startswith("/")


def with_tls_policy(url: URL) -> URL:
    """Remote hosts get TLS (sslmode=require) unless the URL explicitly chooses an sslmode."""
    if is_local(url) or "sslmode" in url.query:
        return url
    return url.update_query_dict({"sslmode": "require"})


def sqlalchemy_url(url: str, *, source: str) -> URL:
    """The URL for SQLAlchemy with the psycopg 3 driver and the TLS policy applied."""
    return with_tls_policy(parse_url(url, source=source)).set(drivername="postgresql+psycopg")


def libpq_dsn(url: str, *, source: str) -> str:
    """The URL as libpq understands it (for psycopg.connect, pg_dump, psql)."""
    parsed = with_tls_policy(parse_url(url, source=source)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, source: str, **kwargs: object) -> sa.Engine:
    """An engine for `url`; connection problems surface as DatabaseConfigError on first use."""
    return sa.create_engine(sqlalchemy_url(url, source=source), pool_pre_ping=True, **kwargs)


def explain_connection_error(exc: BaseException, url: str, *, source: str) -> DatabaseConfigError:
    """Turn a driver error into one sentence that names the variable and what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    masked = mask(url)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = "the server refused the credentials: check the user and password in " + source
    elif "does not exist" in lowered and "database" in lowered:
        hint = f"the database does not exist on that server: create it or fix {source}"
    elif "connection refused" in lowered or "could not connect" in lowered:
        hint = f"nothing accepts connections there: start the server or fix host/port in {source}"
    elif "timeout" in lowered or "timed out" in lowered:
        hint = f"the server did not answer in time: check the host in {source} and the network"
    elif "could not translate host name" in lowered or "name or service not known" in lowered:
        hint = f"the host name does not resolve: fix {source}"
    elif "ssl" in lowered:
        hint = (
            "TLS negotiation failed: remote servers need TLS; add sslmode=disable to "
            f"{source} only if that server is trusted and local"
        )
    else:
        hint = f"check {source}"
    return DatabaseConfigError(f"cannot connect to {masked} ({source}): {text} — {hint}")


def connect(
    url: str,
    *,
    source: str,
    autocommit: bool = False,
    timeout_s: int = 10,
    utc: bool = False,
    application_name: str | None = None,
    prepared_statements: bool = True,
) -> psycopg.Connection:
    """The project's one way to open a PostgreSQL connection: the TLS policy applied, and a
    failure as a DatabaseConfigError naming `source` (the variable the URL came from), the
    password masked. utc: the session's time zone is UTC (timestamps rendered as text must
    not depend on the server's zone). application_name: how the session shows in
    pg_stat_activity. prepared_statements=False for sessions reset by DISCARD ALL, which
    would silently drop them. Use it as a context manager: commit on success."""
    try:
        return psycopg.connect(
            libpq_dsn(url, source=source),
            autocommit=autocommit,
            connect_timeout=timeout_s,
            options="-c TimeZone=UTC" if utc else None,
            application_name=application_name,
            prepare_threshold=5 if prepared_statements else None,
        )
    except psycopg.OperationalError as exc:
        raise explain_connection_error(exc, url, source=source) from None


def check_connection(url: str, *, source: str, timeout_s: int = 5) -> str:
    """Connect once and return the server version; raise DatabaseConfigError otherwise."""
    with connect(url, source=source, autocommit=True, timeout_s=timeout_s) as conn:
        row = conn.execute("show server_version").fetchone()
    return str(row[0]) if row else ""


@contextmanager
def admin_connection(server_url: str, *, source: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection for CREATE/DROP DATABASE, which cannot run in a transaction."""
    with connect(server_url, source=source, autocommit=True) as conn:
        yield conn


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    return row is not None


def create_database(conn: psycopg.Connection, name: str, *, template: str | None = None) -> None:
    statement = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        statement = sql.SQL("{} template {}").format(statement, sql.Identifier(template))
    conn.execute(statement)


def drop_database(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def url_for_database(server_url: str, database: str) -> str:
    """The same server and credentials, another database."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)
