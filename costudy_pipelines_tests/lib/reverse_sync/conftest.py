"""Fixtures for the reverse sync: a website database, a platform database, real connections,
and a running PlatformApiServer."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import psycopg
import pytest

from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.servers import PlatformApiServer
from costudy_pipelines_tests.harness import TEST_URL_VAR, DatabaseFactory

WEBSITE_SQL = PROJECT_ROOT / "costudy_pipelines" / "sandbox" / "sql" / "website.sql"


def _build_website(url: str) -> None:
    with connect(url, source=TEST_URL_VAR, autocommit=True, utc=True) as conn:
        conn.execute(WEBSITE_SQL.read_text())


@pytest.fixture
def website_url(databases: DatabaseFactory) -> str:
    """A new database with the website's schema (copied from a template built once)."""
    digest = hashlib.sha256(WEBSITE_SQL.read_bytes()).hexdigest()[:16]
    return databases.create(template=databases.template(f"tpl_website_{digest}", _build_website))


@pytest.fixture
def website(website_url: str) -> Iterator[psycopg.Connection]:
    with connect(website_url, source=TEST_URL_VAR, autocommit=True, utc=True) as conn:
        yield conn


@pytest.fixture
def platform(platform_url: str) -> Iterator[psycopg.Connection]:
    with connect(platform_url, source=TEST_URL_VAR, autocommit=True, utc=True) as conn:
        yield conn


@pytest.fixture
def api_token() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
def platform_api(api_token: str) -> Iterator[PlatformApiServer]:
    with PlatformApiServer(token=api_token) as server:
        yield server
