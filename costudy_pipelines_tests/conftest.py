from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import apply_pending, discover
from costudy_pipelines.lib.settings import ENV_FILE_VAR, PROJECT_ROOT
from costudy_pipelines.sources.config import PARTITIONS_START_VAR
from costudy_pipelines_tests.harness import DatabaseFactory, test_server_url

# Fixtures shared across folders (a module's own fixture of the same name wins).
pytest_plugins = ["costudy_pipelines_tests.sandbox.servers.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """The suite never reads the checkout's .env: after `make demo` it holds the sandbox's
    block, whose COSTUDY_PARTITIONS_START (the demo world's first day, yesterday's month)
    would move every test's partitions the moment a command under test loads it. A test that
    wants an env file names its own (COSTUDY_ENV_FILE)."""
    if not os.environ.get(ENV_FILE_VAR):
        empty = Path(tempfile.mkdtemp(prefix="costudy-tests-")) / "no.env"
        os.environ[ENV_FILE_VAR] = str(empty)
    os.environ.pop(PARTITIONS_START_VAR, None)


WAREHOUSE_SQL = PROJECT_ROOT / "sql" / "warehouse"
PLATFORM_SQL = PROJECT_ROOT / "sql" / "platform"


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


@pytest.fixture
def warehouse_url(databases: DatabaseFactory) -> str:
    """A fresh warehouse, migrated by the runner (from a template built once per schema)."""
    fingerprint = discover(WAREHOUSE_SQL, database="warehouse").fingerprint()
    template = databases.template(
        f"tpl_warehouse_{fingerprint}", lambda url: apply_pending(url, WAREHOUSE_SQL)
    )
    return databases.create(template=template)


@pytest.fixture
def platform_url(databases: DatabaseFactory) -> str:
    """A new database holding the whole platform schema (copied from a template built once)."""
    fingerprint = discover(PLATFORM_SQL, database="platform").fingerprint()
    template = databases.template(
        f"tpl_platform_{fingerprint}", lambda url: apply_pending(url, PLATFORM_SQL)
    )
    return databases.create(template=template)
