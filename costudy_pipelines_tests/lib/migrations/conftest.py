"""Fixtures of this folder; the helpers they use live in support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.settings import DATABASES
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    Cli,
    write_config,
    write_files,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty migration folder of the test's own (named like a database folder)."""
    path = tmp_path / "app"
    path.mkdir()
    return path


@pytest.fixture
def cli(databases, tmp_path: Path, folder: Path) -> Cli:
    dev, prod = databases.create(), databases.create()
    # Every database variable is set, so the CLI never starts an embedded server of its own.
    env = {spec.env_var: dev for spec in DATABASES}
    env |= {
        "PLATFORM_DB_URL": dev,
        "PLATFORM_PROD_DB_URL": prod,
        "COSTUDY_MIGRATIONS_CONFIG": str(write_config(tmp_path, folder)),
        "DAGSTER_HOME": str(tmp_path),
        "COSTUDY_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    write_files(folder, ACCOUNTS)
    return Cli(env)
