"""Fixtures of this folder; the helpers they use live in support.py."""

from __future__ import annotations

import pytest

from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.sandbox.support import SMALL


@pytest.fixture(scope="module")
def world() -> World:
    """A small world nobody advances (module-wide: tests only read it)."""
    return World(SMALL)


@pytest.fixture
def fresh_world() -> World:
    """A small world of the test's own, to advance."""
    return World(SMALL)
