from __future__ import annotations

from collections.abc import Iterator

import pytest

from costudy_pipelines_tests.harness import DatabaseFactory, test_server_url


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """Admin URL (database `postgres`) of a real PostgreSQL server for this test session."""
    return test_server_url()


@pytest.fixture
def databases(pg_server_url: str) -> Iterator[DatabaseFactory]:
    """Make fresh databases (optionally from a template); all are dropped after the test."""
    factory = DatabaseFactory(pg_server_url)
    yield factory
    factory.drop_all()


@pytest.fixture
def fresh_db_url(databases: DatabaseFactory) -> str:
    """URL of a new, empty database of its own."""
    return databases.create()
