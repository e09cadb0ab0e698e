"""Fixtures of this folder; the helpers they use live in copies.py."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.defs.finance.copies import (
    WORLD,
    Copies,
    Databases,
    database_name,
    schema_template,
)
from costudy_pipelines_tests.defs.finance.loading import load_world
from costudy_pipelines_tests.harness import DatabaseFactory


@pytest.fixture(scope="session")
def world() -> World:
    return World(WORLD)


@pytest.fixture(scope="session")
def loaded(pg_server_url: str, world: World) -> Iterator[Databases]:
    """Names of the loaded databases, to copy from."""
    factory = DatabaseFactory(pg_server_url)
    urls = Databases(
        warehouse=factory.create(template=schema_template(factory, "warehouse")),
        platform=factory.create(template=schema_template(factory, "platform")),
        course=factory.create(),
    )
    load_world(world, warehouse=urls.warehouse, platform=urls.platform, course=urls.course)
    yield Databases(*(database_name(url) for url in vars(urls).values()))
    factory.drop_all()


@pytest.fixture
def dbs(databases: DatabaseFactory, loaded: Databases) -> Copies:
    return Copies(databases, loaded)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral
