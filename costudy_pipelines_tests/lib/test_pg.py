"""Database URLs: validation, masking, TLS policy, unreachable servers."""

from __future__ import annotations

import secrets
import socket

import pytest
from sqlalchemy.engine import URL, make_url

from costudy_pipelines.lib import pg


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql://u@h/db", "postgresql://user@host:5432"],
)
def test_malformed_urls_name_the_variable(url: str) -> None:
    with pytest.raises(pg.DatabaseConfigError, match="PLATFORM_DB_URL"):
        pg.parse_url(url, source="PLATFORM_DB_URL")


def test_mask_hides_the_password_and_keeps_the_rest() -> None:
    password = secrets.token_urlsafe(12)
    url = URL.create("postgresql", "app", password, "db.internal", 6543, "warehouse")
    masked = make_url(pg.mask(url.render_as_string(hide_password=False)))
    assert password not in str(masked)
    assert masked.password == "***"
    assert (masked.username, masked.host, masked.port, masked.database) == (
        "app",
        "db.internal",
        6543,
        "warehouse",
    )


@pytest.mark.parametrize(
    ("url", "expected_sslmode"),
    [
        ("postgresql://u@db.example.org/w", "require"),
        ("postgresql://u@db.example.org/w?sslmode=disable", "disable"),
        ("postgresql://u@db.example.org/w?sslmode=verify-full", "verify-full"),
        ("postgresql://u@127.0.0.1:5432/w", None),
        ("postgresql://u@localhost/w", None),
        ("postgresql://u@/w?host=/var/run/postgresql", None),
    ],
)
def test_remote_hosts_require_tls_unless_the_url_says_otherwise(
    url: str, expected_sslmode: str | None
) -> None:
    resolved = pg.sqlalchemy_url(url, source="X")
    assert resolved.query.get("sslmode") == expected_sslmode
    assert resolved.drivername == "postgresql+psycopg"


def test_unreachable_server_says_what_to_do() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    password = secrets.token_urlsafe(12)
    url = URL.create("postgresql", "app", password, "127.0.0.1", closed_port, "warehouse")
    url = url.render_as_string(hide_password=False)
    with pytest.raises(pg.DatabaseConfigError) as caught:
        pg.check_connection(url, source="WAREHOUSE_DB_URL", timeout_s=2)
    message = str(caught.value)
    assert "WAREHOUSE_DB_URL" in message and "start the server" in message
    assert password not in message


def test_missing_database_is_named(pg_server_url: str) -> None:
    url = pg.url_for_database(pg_server_url, "no_such_database_here")
    with pytest.raises(pg.DatabaseConfigError, match=r"does not exist.*COURSE_DB_URL"):
        pg.check_connection(url, source="COURSE_DB_URL")
