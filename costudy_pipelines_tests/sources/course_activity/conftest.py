from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from costudy_pipelines.sandbox.course_activity import activity_server
from costudy_pipelines.sandbox.servers.mongo_wire import MongoWireServer
from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.sources.course_activity.support import SMALL


@pytest.fixture(scope="module")
def world() -> World:
    """A small world nobody advances (module-wide: tests only read it)."""
    return World(SMALL)


@pytest.fixture
def server(world: World) -> Iterator[MongoWireServer]:
    """The world's documents behind the MongoDB wire protocol; faults are the test's own."""
    with activity_server(world) as running:
        yield running


@pytest.fixture
def client(server: MongoWireServer) -> Iterator[MongoClient]:
    with MongoClient(server.uri, tz_aware=True, serverSelectionTimeoutMS=5000) as mongo:
        yield mongo
