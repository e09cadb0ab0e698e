from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from costudy_pipelines_tests.platform_schema.support import connect


@pytest.fixture
def platform(platform_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh platform database."""
    with connect(platform_url) as conn:
        yield conn
