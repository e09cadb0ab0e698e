from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.platform_schema.migrations import apply_file, content_digest, up_files
from costudy_pipelines_tests.platform_schema.support import connect


def build_platform(url: str) -> None:
    with connect(url) as conn:
        for path in up_files():
            apply_file(conn, path)


@pytest.fixture
def platform_url(databases: DatabaseFactory) -> str:
    """A new database holding the whole platform schema (copied from a template built once)."""
    template = databases.template(f"tpl_platform_{content_digest(up_files())}", build_platform)
    return databases.create(template=template)


@pytest.fixture
def platform(platform_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh platform database."""
    with connect(platform_url) as conn:
        yield conn
