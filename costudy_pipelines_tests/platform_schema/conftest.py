from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from costudy_pipelines.lib.migrations import apply_pending, discover
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.platform_schema.support import PLATFORM_SQL, connect


def build_platform(url: str) -> None:
    apply_pending(url, PLATFORM_SQL)


@pytest.fixture
def platform_url(databases: DatabaseFactory) -> str:
    """A new database holding the whole platform schema (copied from a template built once)."""
    fingerprint = discover(PLATFORM_SQL, database="platform").fingerprint()
    template = databases.template(f"tpl_platform_{fingerprint}", build_platform)
    return databases.create(template=template)


@pytest.fixture
def platform(platform_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh platform database."""
    with connect(platform_url) as conn:
        yield conn
