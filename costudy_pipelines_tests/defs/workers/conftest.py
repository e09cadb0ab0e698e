"""Fixtures of this folder; the helpers they use live in support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox import stack
from costudy_pipelines_tests.defs.workers import broker
from costudy_pipelines_tests.defs.workers.support import (
    WORLD,
    Cluster,
    prepare_storage,
)
from costudy_pipelines_tests.harness import DatabaseFactory, project_environment


@pytest.fixture
def project(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], Path]]:
    """Fresh databases, a migrated warehouse and a running sandbox: the environment every
    process of the test shares (DAGSTER_HOME: the project's dagster.yaml), and its home."""
    home = tmp_path / "home"
    env = project_environment(databases, home)
    for key in ("COSTUDY_HOME", "COSTUDY_ENV_FILE"):  # the sandbox started from this process
        monkeypatch.setenv(key, env[key])
    try:
        urls = {var: env[var] for var in ("WEBSITE_DB_URL", "COURSE_DB_URL", "PLATFORM_DB_URL")}
        state = stack.up(WORLD, database_urls=urls)
        apply_pending(env["WAREHOUSE_DB_URL"], PROJECT_ROOT / "sql" / "warehouse")
        env |= {**stack.sandbox_environment(state), "DAGSTER_HOME": str(PROJECT_ROOT)}
        prepare_storage(env, home)
        yield env, home
    finally:
        stack.down()


@pytest.fixture
def cluster(project: tuple[dict[str, str], Path]) -> Iterator[Cluster]:
    """The project on celery workers, on a RabbitMQ vhost of its own."""
    env, home = project
    with broker.vhost() as vhost:
        env = env | {
            "COSTUDY_EXECUTOR": "celery",
            "CELERY_BROKER_URL": broker.broker_url(vhost),
            "CELERY_BACKEND_URL": broker.backend_url(),
        }
        cluster = Cluster(env, home)
        try:
            yield cluster
        finally:
            cluster.stop_all()
