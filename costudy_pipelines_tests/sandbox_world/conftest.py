from __future__ import annotations

import pytest

from costudy_pipelines.sandbox.world import World, WorldConfig

SMALL = WorldConfig(seed=11, people=1_500)


@pytest.fixture(scope="module")
def world() -> World:
    """A small world nobody advances (module-wide: tests only read it)."""
    return World(SMALL)


@pytest.fixture
def fresh_world() -> World:
    """A small world of the test's own, to advance."""
    return World(SMALL)
