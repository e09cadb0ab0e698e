"""Fixtures of this folder; the helpers they use live in support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from costudy_pipelines.sandbox import stack
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.sources.support import (
    SOURCE_DATABASES,
    WORLD,
    Sandbox,
    set_environment,
)


@pytest.fixture
def sandbox(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    databases: DatabaseFactory,
    warehouse_url: str,
) -> Iterator[Sandbox]:
    # The sandbox keeps its state, files and env block in this test's own folder.
    set_environment(
        monkeypatch, {"COSTUDY_HOME": str(tmp_path), "COSTUDY_ENV_FILE": str(tmp_path / ".env")}
    )
    urls = {name: databases.create() for name in SOURCE_DATABASES}
    try:
        state = stack.up(WORLD, database_urls=urls)
        set_environment(
            monkeypatch,
            {**urls, "WAREHOUSE_DB_URL": warehouse_url, **stack.sandbox_environment(state)},
        )
        yield Sandbox(WORLD, state, urls, warehouse_url)
    finally:
        stack.down()
